"""``make loadtest``: both profiles always run, each reported and judged on its own, with progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import run
from loadtests.thresholds import AGGREGATED

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\n"
)
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
    "Total Min Response Time,Total Max Response Time,Total Average Content Size\n"
)


def _stats(path: Path, p95: float) -> Path:
    row = f",{AGGREGATED},100,0,10,12,1,400,100,50.0,0.0,10,11,12,13,20,{p95},{p95},{p95},{p95},{p95},{p95}\n"
    path.write_text(HEADER + f"GET,GET /api/v1/charges{row[len(AGGREGATED) + 1 :]}" + row)
    return path


def _history_row(timestamp: int, users: int, rps: float, requests: int, failures: int, name: str) -> str:
    return (
        f"{timestamp},{users},,{name},{rps},0.0,10,11,12,13,20,30,40,50,60,70,80,"
        f"{requests},{failures},10,12.0,1,400,100.0\n"
    )


def test_the_spike_runs_after_a_failed_base_run_and_the_exit_code_reports_the_failure() -> None:
    ran = []

    def run_one(profile: str) -> bool:
        ran.append(profile)
        return profile != "base"

    assert run.run_profiles(["base", "spike"], run_one) == 1
    assert ran == ["base", "spike"]


def test_a_profile_that_crashes_neither_skips_the_next_nor_passes(capsys: pytest.CaptureFixture[str]) -> None:
    ran = []

    def run_one(profile: str) -> bool:
        ran.append(profile)
        if profile == "base":
            raise RuntimeError("the stack did not start")
        return True

    assert run.run_profiles(["base", "spike"], run_one) == 1
    assert ran == ["base", "spike"]
    captured = capsys.readouterr()
    assert "[base] FAIL: RuntimeError: the stack did not start" in captured.err
    assert "base: FAIL, spike: PASS" in captured.out


def test_two_passing_profiles_pass() -> None:
    assert run.run_profiles(["base", "spike"], lambda _profile: True) == 0


def test_each_profile_writes_its_own_reports_and_is_judged_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def fake_locust(host: str, name: str, users: int, run_time: str, spike: bool, *_: object) -> Path:
        calls.append((name, spike))
        return _stats(tmp_path / f"{name}_stats.csv", 900 if name == "base" else 50)

    monkeypatch.setenv("ERP_LOAD_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(run, "run_locust", fake_locust)
    assert run.main([]) == 1
    assert calls == [("base", False), ("spike", True)]
    out = capsys.readouterr().out
    assert "== base ==" in out and "== spike ==" in out
    assert "FAIL: GET /api/v1/charges: p95 900 ms" in out
    assert "base: FAIL, spike: PASS" in out


def test_one_profile_can_be_chosen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_locust(host: str, name: str, *_: object) -> Path:
        calls.append(name)
        return _stats(tmp_path / f"{name}_stats.csv", 50)

    monkeypatch.setenv("ERP_LOAD_HOST", "http://127.0.0.1:9")
    monkeypatch.setattr(run, "run_locust", fake_locust)
    assert run.main(["--profile", "spike"]) == 0
    assert calls == ["spike"]


def test_the_progress_line_reads_the_latest_aggregate_row_of_the_history(tmp_path: Path) -> None:
    history = tmp_path / "base_stats_history.csv"
    history.write_text(
        HISTORY_HEADER
        + _history_row(100, 0, 0.0, 0, 0, AGGREGATED)
        + _history_row(110, 10, 42.5, 400, 3, "GET /api/v1/charges")
        + _history_row(110, 10, 45.0, 420, 4, AGGREGATED)
        + "111,10,,Aggregated,\n"  # a row Locust is still writing
    )
    rows = run.read_history(history)
    assert [(r.timestamp, r.users, r.requests, r.failures) for r in rows] == [
        (100, 0, 0, 0),
        (110, 10, 420, 4),
    ]
    assert (
        rows[-1].line("base", 10) == "[base]   10 s: 10 users, 45.0 req/s, 420 requests, 4 failures (0.95%)"
    )
    assert run.read_history(tmp_path / "missing.csv") == []
