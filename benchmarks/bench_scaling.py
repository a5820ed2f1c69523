"""The read mix at 1 and 2 API worker processes on PostgreSQL + Redis, the L1 off and on (docs/SCALING.md).

Every server is the product as shipped (``benchmarks/shipped.py``: ``python -m erp_api serve`` with
``ERP_WORKERS`` processes, authentication, rate limiter on Redis, metrics and access log on, an admin
key sent by wrk), each with cache and limiter keys of its own. Configurations: one worker with the
L1 (the default with Redis), two workers on Redis alone (``ERP_CACHE_L1=off``), two workers with the
L1. Budget: two workers with the L1 serve the read mix at >= 1.5x the req/s of two workers on Redis
alone. All servers run at once and are measured in interleaved rounds, so that drift of the machine
hits every configuration alike; the table quotes medians, ratios are medians of per-round ratios.
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

from benchmarks import wrk
from benchmarks.bench_http import CONNECTIONS, delete_redis_keys, read_mix
from benchmarks.common import (
    POSTGRES_ADMIN,
    REDIS_URL,
    machine,
    median,
    postgres_database,
    reachable,
    run_cli,
    write_result,
)
from benchmarks.shipped import auth_headers, new_admin_key, shipped_server

ROUNDS = 3
SECONDS = 6
ONE_L1 = "1 worker, L1 on"
TWO_REDIS = "2 workers, Redis only (L1 off)"
TWO_L1 = "2 workers, L1 on"
CONFIGS = {ONE_L1: (1, {}), TWO_REDIS: (2, {"ERP_CACHE_L1": "off"}), TWO_L1: (2, {})}
L1_TARGET = 1.5
"""Read-mix req/s of two workers with the L1 against two workers on Redis alone."""


def main() -> None:
    if not (reachable(POSTGRES_ADMIN, 5432) and reachable(REDIS_URL, 6379) and wrk.available()):
        raise SystemExit("bench_scaling needs PostgreSQL, Redis and wrk")
    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
    admin_key = new_admin_key()
    headers = auth_headers(admin_key)
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        base_env = {
            "ERP_DATABASE_URL": database_url,
            "ERP_CACHE_BACKEND": "redis",
            "ERP_REDIS_URL": REDIS_URL,
        }
        run_cli(base_env, "migrate")
        run_cli(base_env, "seed")
        servers = {}
        for index, (name, (workers, extra)) in enumerate(CONFIGS.items()):
            own = f"{prefix}-{index}"
            env = {**base_env, "ERP_CACHE_PREFIX": own, "ERP_RATE_LIMIT_PREFIX": f"{own}:ratelimit", **extra}
            server = shipped_server(env, admin_key, Path(tmp) / f"{index}.log", workers=workers)
            servers[name] = stack.enter_context(server).base_url
        paths = read_mix(with_summary=True)
        for url in servers.values():  # warm-up: connections, caches (each worker's L1), code paths
            wrk.run(url, paths, 3, CONNECTIONS, headers)
        for _ in range(ROUNDS):
            for name, url in servers.items():
                results[name].append(wrk.run(url, paths, SECONDS, CONNECTIONS, headers))
    delete_redis_keys(f"{prefix}-*")
    write_result("scaling", report(results))


def report(results: dict[str, list[wrk.WrkResult]]) -> dict[str, object]:
    def versus(name: str, base: str) -> float:
        pairs = zip(results[name], results[base], strict=True)
        return median([result.rps / other.rps for result, other in pairs])

    rows = [
        [
            name,
            f"{median([r.rps for r in rs]):,.0f}",
            f"{median([r.p50_ms for r in rs]):.1f}",
            f"{median([r.p95_ms for r in rs]):.1f}",
            f"{median([r.p99_ms for r in rs]):.1f}",
            f"{versus(name, TWO_REDIS):.2f}x",
            str(sum(r.errors for r in rs)),
        ]
        for name, rs in results.items()
    ]
    l1_gain = versus(TWO_L1, TWO_REDIS)
    verdict = "met" if l1_gain >= L1_TARGET else "NOT MET"
    return {
        "title": "Scale-out: API worker processes on PostgreSQL + Redis, the L1 off and on",
        "tables": [
            {
                "caption": (
                    "Read mix (60% charge by id, 30% filtered lists, 10% quality summary); python -m erp_api "
                    "serve with ERP_WORKERS=N as shipped (authentication, rate limiter on Redis, metrics and "
                    f"access log on; admin key); wrk 1 thread / {CONNECTIONS} connections on the same 2-core "
                    f"machine, {SECONDS} s x {ROUNDS} interleaved rounds; medians"
                ),
                "columns": [
                    "configuration",
                    "req/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "vs 2 workers Redis only",
                    "errors",
                ],
                "rows": rows,
            }
        ],
        "notes": [
            f"Two workers with the L1: {l1_gain:.2f}x the req/s of two workers on Redis alone "
            f"(budget >= {L1_TARGET}x: {verdict}).",
            f"Two workers against one, both with the L1: {versus(TWO_L1, ONE_L1):.2f}x.",
            "wrk, PostgreSQL and Redis share the same two cores with the workers, so the second worker "
            "competes with the load generator; on separate machines the gain is larger.",
            f"machine: {machine()}",
        ],
        "series": {
            "read mix req/s": {name: median([r.rps for r in rs]) for name, rs in results.items()},
        },
    }


if __name__ == "__main__":
    main()
