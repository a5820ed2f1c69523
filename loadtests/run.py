"""``make loadtest``: start the stack (or target ERP_LOAD_HOST), run Locust headless, judge the run.

Writes CSV and HTML reports under ``reports/``, prints a summary table and exits non-zero when the
failure ratio exceeds its limit or a route's p95 its objective (``loadtests/objectives.toml``).
``--spike`` steps to three times the base load for the middle third of the run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tomllib
from pathlib import Path

from loadtests.stack import Stack
from loadtests.thresholds import DEFAULT_P95_MS, MAX_FAILURE_RATIO, judge, read_stats, summary_table

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"


def load_objectives(path: Path) -> tuple[dict[str, float], float, float]:
    data = tomllib.loads(path.read_text())
    routes = {str(name): float(ms) for name, ms in data.get("p95_ms", {}).items()}
    return (
        routes,
        float(data.get("default_p95_ms", DEFAULT_P95_MS)),
        float(data.get("max_failure_ratio", MAX_FAILURE_RATIO)),
    )


def run_locust(host: str, name: str, users: int, run_time: str, spike: bool, api_key: str | None) -> Path:
    REPORTS.mkdir(exist_ok=True)
    prefix = REPORTS / name
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
    # Locust's own exit code reflects failures by its rules; ours are judged below from the CSV.
    subprocess.run(command, env=env, cwd=ROOT, check=False, timeout=3600)
    return prefix.with_name(f"{name}_stats.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=int(os.environ.get("ERP_LOAD_USERS", "10")))
    parser.add_argument("--run-time", default=os.environ.get("ERP_LOAD_RUN_TIME", "60s"))
    parser.add_argument("--spike", action="store_true", help="step to 3x the users for the middle third")
    parser.add_argument(
        "--stack", choices=["default", "postgres-redis"], default=os.environ.get("ERP_LOAD_STACK", "default")
    )
    parser.add_argument("--objectives", type=Path, default=ROOT / "loadtests" / "objectives.toml")
    parser.add_argument("--name", default=None, help="report name under reports/")
    args = parser.parse_args(argv)

    objectives, default_p95, max_failures = load_objectives(args.objectives)
    name = args.name or f"loadtest-{args.stack}{'-spike' if args.spike else ''}"
    host = os.environ.get("ERP_LOAD_HOST")
    api_key = os.environ.get("ERP_LOAD_API_KEY")
    if host:
        stats = run_locust(host, name, args.users, args.run_time, args.spike, api_key)
    else:
        api_key = api_key or secrets.token_urlsafe(32)
        with Stack(args.stack, admin_key=api_key) as stack:
            stats = run_locust(stack.base_url, name, args.users, args.run_time, args.spike, api_key)
    if not stats.exists():
        print(f"FAIL: Locust wrote no statistics ({stats})", file=sys.stderr)
        return 1
    verdict = judge(read_stats(stats), objectives, default_p95_ms=default_p95, max_failure_ratio=max_failures)
    print(summary_table(verdict, objectives))
    print(f"reports: {stats.parent / name}.html and {stats.parent / name}_*.csv")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
