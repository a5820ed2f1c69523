"""The load-run verdict: a run that misses an objective fails, one that meets them all passes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadtests import run
from loadtests.thresholds import AGGREGATED, RouteStats, judge, read_stats

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\n"
)


def _row(name: str, requests: int, failures: int, p95: float, kind: str = "GET") -> str:
    return f"{kind},{name},{requests},{failures},10,12,1,400,100,50.0,0.0,10,11,12,13,20,{p95},{p95},{p95},{p95},{p95},{p95}\n"


def _stats(rows: list[str], tmp_path: Path) -> Path:
    path = tmp_path / "run_stats.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def _stat(name: str, requests: int = 100, failures: int = 0, p95: float = 50.0) -> RouteStats:
    return RouteStats(name, requests, failures, 10.0, p95, p95, 10.0)


def test_a_run_within_objectives_passes() -> None:
    verdict = judge([_stat("GET /a"), _stat("GET /b", p95=149), _stat(AGGREGATED, 200, 1)])
    assert verdict.passed
    assert verdict.problems == ()


def test_a_route_over_its_p95_objective_fails_the_run() -> None:
    verdict = judge([_stat("GET /a", p95=151), _stat(AGGREGATED, 100)])
    assert not verdict.passed
    assert "GET /a: p95 151 ms exceeds its objective of 150 ms" in verdict.problems


def test_per_route_objectives_override_the_default() -> None:
    rows = [_stat("POST /batch", p95=240), _stat("GET /a", p95=160), _stat(AGGREGATED, 200)]
    verdict = judge(rows, {"POST /batch": 250, "GET /a": 200})
    assert verdict.passed
    assert not judge(rows, {"POST /batch": 200}).passed


def test_a_failure_ratio_over_one_percent_fails_the_run() -> None:
    assert judge([_stat("GET /a", 1000, 10), _stat(AGGREGATED, 1000, 10)]).passed
    verdict = judge([_stat("GET /a", 1000, 11), _stat(AGGREGATED, 1000, 11)])
    assert not verdict.passed
    assert "failure ratio" in verdict.problems[0]


def test_a_run_without_requests_fails() -> None:
    assert not judge([_stat(AGGREGATED, 0)]).passed


def test_locust_csv_is_read_with_the_aggregate_row(tmp_path: Path) -> None:
    path = _stats([_row("GET /api/v1/charges", 120, 0, 80), _row(AGGREGATED, 120, 0, 80, kind="")], tmp_path)
    rows = read_stats(path)
    assert [(r.name, r.requests, r.p95_ms) for r in rows] == [
        ("GET /api/v1/charges", 120, 80.0),
        (AGGREGATED, 120, 80.0),
    ]


def test_the_command_exits_non_zero_when_a_target_run_misses_its_objective(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = _stats(
        [_row("GET /api/v1/charges", 100, 0, 900), _row(AGGREGATED, 100, 0, 900, kind="")], tmp_path
    )
    monkeypatch.setenv("ERP_LOAD_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(run, "run_locust", lambda *args, **kwargs: slow)
    monkeypatch.setattr(sys, "argv", ["run"])
    assert run.main([]) == 1
    assert "FAIL: GET /api/v1/charges: p95 900 ms" in capsys.readouterr().out
