"""``make loadtest``: run both load profiles, each on a stack of its own, and judge each run.

The ``base`` profile holds the users steady; ``spike`` steps to three times them for the middle third
of the run. Both always run (a failed base run does not skip the spike), each with its own reports
under ``reports/`` (``base_*`` and ``spike_*``: Locust's CSV and HTML, the stack's log), its own
summary table and verdict. While Locust runs, a progress line every ~10 s says how many users are
active, the request rate and the failures so far. Exits non-zero when either run fails: a failure
ratio above its limit or a route's p95 above its objective (``loadtests/objectives.toml``).
``ERP_LOAD_HOST`` points the runs at a running service instead of a stack started here.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.stack import Stack
from loadtests.thresholds import (
    AGGREGATED,
    DEFAULT_P95_MS,
    MAX_FAILURE_RATIO,
    judge,
    read_stats,
    summary_table,
)

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
PROFILES = ("base", "spike")
PROGRESS_SECONDS = 10.0


def load_objectives(path: Path) -> tuple[dict[str, float], float, float]:
    data = tomllib.loads(path.read_text())
    routes = {str(name): float(ms) for name, ms in data.get("p95_ms", {}).items()}
    return (
        routes,
        float(data.get("default_p95_ms", DEFAULT_P95_MS)),
        float(data.get("max_failure_ratio", MAX_FAILURE_RATIO)),
    )


@dataclass(frozen=True)
class Progress:
    """The last aggregate row of Locust's ``<prefix>_stats_history.csv``."""

    timestamp: float
    users: int
    rps: float
    requests: int
    failures: int

    def line(self, name: str, elapsed: float) -> str:
        ratio = self.failures / self.requests if self.requests else 0.0
        return (
            f"[{name}] {elapsed:4.0f} s: {self.users} users, {self.rps:.1f} req/s, "
            f"{self.requests} requests, {self.failures} failures ({ratio:.2%})"
        )


def read_history(path: Path) -> list[Progress]:
    """The aggregate rows of a stats history (cumulative counts; Locust flushes it every few seconds)."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            if record.get("Name") != AGGREGATED:
                continue
            try:
                rows.append(
                    Progress(
                        timestamp=float(record["Timestamp"]),
                        users=int(record["User Count"]),
                        rps=float(record["Requests/s"] or 0),
                        requests=int(record["Total Request Count"]),
                        failures=int(record["Total Failure Count"]),
                    )
                )
            except (KeyError, TypeError, ValueError):  # a row Locust is still writing
                continue
    return rows


def run_locust(
    host: str,
    name: str,
    users: int,
    run_time: str,
    spike: bool,
    api_key: str | None,
    *,
    on_tick: Callable[[float], None] | None = None,
) -> Path:
    """Run Locust headless against ``host``; reports go to ``reports/<name>_*``. Prints a progress
    line every ~10 s; ``on_tick`` is called about once a second with the seconds since the start."""
    REPORTS.mkdir(exist_ok=True)
    prefix = REPORTS / name
    for stale in REPORTS.glob(f"{name}_*.csv"):
        stale.unlink()
    env = {**os.environ, "ERP_LOAD_SPIKE": "1" if spike else "0"}
    if api_key:
        env["ERP_LOAD_API_KEY"] = api_key
    command = [
        sys.executable, "-m", "locust",
        "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--only-summary",
        "--host", host,
        "--users", str(users), "--spawn-rate", str(max(1, users)),
        "--run-time", run_time, "--stop-timeout", "10",
        "--csv", str(prefix), "--html", f"{prefix}.html",
        "--loglevel", "WARNING",
    ]  # fmt: skip
    history = prefix.with_name(f"{name}_stats_history.csv")
    with (REPORTS / f"{name}_locust.log").open("wb") as log:
        # Locust's own exit code reflects failures by its rules; ours are judged from the CSV.
        locust = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        start = time.monotonic()
        next_progress = start + PROGRESS_SECONDS
        try:
            while locust.poll() is None:
                time.sleep(1.0)
                now = time.monotonic()
                if on_tick is not None:
                    on_tick(now - start)
                if now >= next_progress:
                    next_progress += PROGRESS_SECONDS
                    rows = read_history(history)
                    line = (
                        rows[-1].line(name, now - start)
                        if rows
                        else f"[{name}] {now - start:4.0f} s: starting"
                    )
                    print(line, flush=True)
        finally:
            if locust.poll() is None:
                locust.kill()
            locust.wait(timeout=30)
    return prefix.with_name(f"{name}_stats.csv")


def judge_run(name: str, stats: Path, objectives_path: Path) -> bool:
    """Print the summary table and verdict of one run; True when it passed."""
    objectives, default_p95, max_failures = load_objectives(objectives_path)
    if not stats.exists():
        print(f"[{name}] FAIL: Locust wrote no statistics ({stats}); see reports/{name}_locust.log")
        return False
    verdict = judge(read_stats(stats), objectives, default_p95_ms=default_p95, max_failure_ratio=max_failures)
    print(f"\n== {name} ==")
    print(summary_table(verdict, objectives))
    print(f"reports: {stats.parent / name}.html and {stats.parent / name}_*.csv")
    return verdict.passed


def run_profiles(profiles: Sequence[str], run_one: Callable[[str], bool]) -> int:
    """Run every profile whatever the outcome of the others; 0 only when all passed."""
    outcomes = {}
    for profile in profiles:
        try:
            outcomes[profile] = run_one(profile)
        except Exception as exc:  # one profile's crash must not skip the next
            print(f"[{profile}] FAIL: {type(exc).__name__}: {exc}", file=sys.stderr)
            outcomes[profile] = False
    print("\n" + ", ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in outcomes.items()))
    return 0 if outcomes and all(outcomes.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=int(os.environ.get("ERP_LOAD_USERS", "10")))
    parser.add_argument("--run-time", default=os.environ.get("ERP_LOAD_RUN_TIME", "60s"))
    parser.add_argument(
        "--profile",
        action="append",
        choices=PROFILES,
        help="run only this profile (repeatable); default: base, then spike",
    )
    parser.add_argument(
        "--stack", choices=["default", "postgres-redis"], default=os.environ.get("ERP_LOAD_STACK", "default")
    )
    parser.add_argument("--objectives", type=Path, default=ROOT / "loadtests" / "objectives.toml")
    args = parser.parse_args(argv)

    host = os.environ.get("ERP_LOAD_HOST")
    api_key = os.environ.get("ERP_LOAD_API_KEY")

    def run_one(profile: str) -> bool:
        spike = profile == "spike"
        print(
            f"[{profile}] {args.users} users{' (x3 in the middle third)' if spike else ''} for {args.run_time}"
        )
        if host:
            stats = run_locust(host, profile, args.users, args.run_time, spike, api_key)
        else:
            key = api_key or secrets.token_urlsafe(32)
            print(
                f"[{profile}] starting the {args.stack} stack (log: reports/{profile}_stack.log)", flush=True
            )
            with Stack(args.stack, admin_key=key, log_path=REPORTS / f"{profile}_stack.log") as stack:
                stats = run_locust(stack.base_url, profile, args.users, args.run_time, spike, key)
        return judge_run(profile, stats, args.objectives)

    return run_profiles(args.profile or PROFILES, run_one)


if __name__ == "__main__":
    sys.exit(main())
