"""What request ids, HTTP metrics and access logs cost on the fastest path: a cached charge read.

Three real servers (``python -m erp_api serve``, one worker, memory cache, same SQLite database) run
side by side: the observability middleware off (``ERP_OBSERVABILITY_MIDDLEWARE=false``, a switch
that exists for this measurement), on without the access log, and on. Each writes its stdout (the
JSON logs) to a file, as a deployment ships logs. wrk drives GET /api/v1/charges/{id} over
keep-alive connections in interleaved rounds: each round measures every server once, so that drift
of the machine hits all alike, and the costs quoted are medians of the per-round ratios.

Two measures per round: requests per second, and the CPU time the server process spent per request
(from /proc). A single worker is CPU-bound, so its throughput is the inverse of the latter; the CPU
time is the steadier of the two on a shared machine, where the load generator and other processes
compete for the same cores. The tables quote medians.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from benchmarks import wrk
from benchmarks.common import RESULTS, cpu_times, machine, median, run_cli, write_result
from testing.processes import running_server, serve_command

ROUNDS = 6
SECONDS = 2
CONNECTIONS = 32
BASELINE = "off"
FULL = "request id + metrics + access log"
CONFIGS = {
    BASELINE: {"ERP_OBSERVABILITY_MIDDLEWARE": "false"},
    "request id + metrics": {"ERP_ACCESS_LOG": "false"},
    FULL: {},
}
CHARGE = {
    "charge_number": "CH-2026-BENCH1",
    "product_sku": "PUMP-A",
    "quantity": "10",
    "unit": "pcs",
    "line": "L1",
    "produced_at": "2026-03-01T06:00:00+00:00",
}


@contextmanager
def serve(env: Mapping[str, str], log_path: Path) -> Iterator[tuple[str, int]]:
    """``python -m erp_api serve`` with its output (the JSON log) going to ``log_path``: (URL, pid)."""
    # One hash seed for all: dict layouts then differ between the servers only where their code does.
    full_env = {**env, "PYTHONHASHSEED": "0"}
    with running_server(full_env, command=serve_command(), log_path=log_path) as server:
        yield server.base_url, server.process.pid


def main() -> None:
    if not wrk.available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    database = RESULTS / "observability.sqlite3"
    for stale in RESULTS.glob("observability.sqlite3*"):
        stale.unlink()
    base_env = {
        "ERP_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "ERP_CACHE_BACKEND": "memory",
        "ERP_RATE_LIMIT_ENABLED": "false",
        "ERP_AUTH_ENABLED": "false",
    }
    run_cli(base_env, "migrate")
    rps: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu_us: dict[str, list[float]] = {name: [] for name in CONFIGS}
    p50: dict[str, list[float]] = {name: [] for name in CONFIGS}
    errors = dict.fromkeys(CONFIGS, 0)
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = {
            name: stack.enter_context(serve({**base_env, **extra}, logs / f"{index}.log"))
            for index, (name, extra) in enumerate(CONFIGS.items())
        }
        created = httpx.post(f"{servers[BASELINE][0]}/api/v1/charges", json=CHARGE, timeout=10)
        created.raise_for_status()
        paths = [created.headers["location"]]
        for url, _pid in servers.values():  # warm-up: connections, the cache entry, code paths
            wrk.run(url, paths, 2, CONNECTIONS)
        for _ in range(ROUNDS):
            for name, (url, pid) in servers.items():
                before = sum(cpu_times(pid))
                result = wrk.run(url, paths, SECONDS, CONNECTIONS)
                spent = sum(cpu_times(pid)) - before
                rps[name].append(result.rps)
                cpu_us[name].append(spent / max(result.requests, 1) * 1e6)
                p50[name].append(result.p50_ms)
                errors[name] += result.errors
        log_lines = {name: sum(1 for _ in (logs / f"{i}.log").open("rb")) for i, name in enumerate(CONFIGS)}

    def lost(values: dict[str, list[float]], name: str, per_request_cost: bool) -> float:
        """Median over the rounds of the throughput lost against the baseline of the same round."""
        pairs = zip(values[name], values[BASELINE], strict=True)
        if per_request_cost:
            return median([(1 - base / value) * 100 for value, base in pairs])
        return median([(base - value) / base * 100 for value, base in pairs])

    rows = []
    for name in CONFIGS:
        rows.append(
            [
                name,
                f"{median(rps[name]):,.0f}",
                f"{median(cpu_us[name]):.1f}",
                f"{median(p50[name]):.2f}",
                "-" if name == BASELINE else f"{lost(rps, name, per_request_cost=False):.1f}%",
                "-" if name == BASELINE else f"{lost(cpu_us, name, per_request_cost=True):.1f}%",
                str(errors[name]),
            ]
        )
    extra_cpu = median([full - base for full, base in zip(cpu_us[FULL], cpu_us[BASELINE], strict=True)])
    write_result(
        "observability",
        {
            "title": "Observability middleware: cost on the cached charge read",
            "tables": [
                {
                    "caption": (
                        "GET /api/v1/charges/{id}, memory cache hit; python -m erp_api serve, 1 worker, SQLite; "
                        f"wrk 1 thread, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS} interleaved rounds; "
                        "medians. Throughput lost against the middleware switched off in the same round, "
                        "measured (req/s) and as implied by the server's CPU time per request (budget: 10%)."
                    ),
                    "columns": [
                        "observability middleware",
                        "req/s",
                        "server CPU µs/request",
                        "p50 ms",
                        "throughput lost (req/s)",
                        "throughput lost (CPU)",
                        "errors",
                    ],
                    "rows": rows,
                }
            ],
            "notes": [
                f"Request id + metrics + access log: +{extra_cpu:.1f} µs of server CPU per request, "
                f"{lost(cpu_us, FULL, per_request_cost=True):.1f}% of the throughput of a CPU-bound worker.",
                "Security headers and gzip stay on in every configuration; they are not part of the switch.",
                f"CPU µs/request per round: { {name: [round(v, 1) for v in cpu_us[name]] for name in CONFIGS} }.",
                f"JSON log lines written (all rounds, including warm-up): {log_lines}.",
                f"machine: {machine()}",
            ],
            "series": {
                "req/s": {name: median(rps[name]) for name in CONFIGS},
                "server CPU µs/request": {name: median(cpu_us[name]) for name in CONFIGS},
            },
        },
    )
    for row in rows:
        print(" | ".join(row))


if __name__ == "__main__":
    main()
