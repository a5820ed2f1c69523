"""Pass/fail judgement of a Locust run: failure ratio and per-route p95 against objectives."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_P95_MS = 150.0
MAX_FAILURE_RATIO = 0.01
AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class RouteStats:
    name: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    rps: float


@dataclass(frozen=True)
class Verdict:
    passed: bool
    problems: tuple[str, ...]
    rows: tuple[RouteStats, ...]


def read_stats(path: Path) -> list[RouteStats]:
    """Rows of Locust's ``<prefix>_stats.csv``, the aggregate row included."""
    rows = []
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            name = record["Name"] if record["Name"] == AGGREGATED else f"{record['Name']}"
            rows.append(
                RouteStats(
                    name=name,
                    requests=int(record["Request Count"]),
                    failures=int(record["Failure Count"]),
                    median_ms=_number(record["Median Response Time"]),
                    p95_ms=_number(record["95%"]),
                    p99_ms=_number(record["99%"]),
                    rps=_number(record["Requests/s"]),
                )
            )
    return rows


def _number(text: str) -> float:
    return float(text) if text not in {"", "N/A"} else 0.0


def judge(
    rows: Iterable[RouteStats],
    objectives: Mapping[str, float] | None = None,
    *,
    default_p95_ms: float = DEFAULT_P95_MS,
    max_failure_ratio: float = MAX_FAILURE_RATIO,
) -> Verdict:
    """Fail when the overall failure ratio exceeds the limit or any route's p95 its objective."""
    rows = tuple(rows)
    objectives = objectives or {}
    problems: list[str] = []
    total = next((row for row in rows if row.name == AGGREGATED), None)
    requests = total.requests if total else sum(row.requests for row in rows)
    failures = total.failures if total else sum(row.failures for row in rows)
    if requests == 0:
        problems.append("no request was made")
    elif failures / requests > max_failure_ratio:
        problems.append(f"failure ratio {failures / requests:.2%} exceeds {max_failure_ratio:.0%}")
    for row in rows:
        if row.name == AGGREGATED or row.requests == 0:
            continue
        limit = objectives.get(row.name, default_p95_ms)
        if row.p95_ms > limit:
            problems.append(f"{row.name}: p95 {row.p95_ms:.0f} ms exceeds its objective of {limit:.0f} ms")
    return Verdict(passed=not problems, problems=tuple(problems), rows=rows)


def summary_table(verdict: Verdict, objectives: Mapping[str, float] | None = None) -> str:
    objectives = objectives or {}
    header = f"{'route':<58} {'reqs':>7} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'obj':>5} {'rps':>7}"
    lines = [header, "-" * len(header)]
    for row in verdict.rows:
        objective = "" if row.name == AGGREGATED else f"{objectives.get(row.name, DEFAULT_P95_MS):.0f}"
        lines.append(
            f"{row.name[:58]:<58} {row.requests:>7} {row.failures:>5} {row.median_ms:>6.0f} "
            f"{row.p95_ms:>6.0f} {row.p99_ms:>6.0f} {objective:>5} {row.rps:>7.1f}"
        )
    lines.append("PASS" if verdict.passed else "FAIL: " + "; ".join(verdict.problems))
    return "\n".join(lines)
