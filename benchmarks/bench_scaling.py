"""Throughput of the read mix at 1 and 2 API worker processes on PostgreSQL + Redis (docs/SCALING.md)."""

from __future__ import annotations

import tempfile
import uuid

from benchmarks import wrk
from benchmarks.bench_http import CONNECTIONS, read_mix
from benchmarks.common import (
    POSTGRES_ADMIN,
    REDIS_URL,
    machine,
    median,
    postgres_database,
    reachable,
    run_cli,
    served,
    write_result,
)

ROUNDS = 3
SECONDS = 6


def main() -> None:
    if not (reachable(POSTGRES_ADMIN, 5432) and reachable(REDIS_URL, 6379) and wrk.available()):
        raise SystemExit("bench_scaling needs PostgreSQL, Redis and wrk")
    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
    with postgres_database() as database_url, tempfile.TemporaryDirectory() as metrics_dir:
        env = {
            "ERP_DATABASE_URL": database_url,
            "ERP_CACHE_BACKEND": "redis",
            "ERP_REDIS_URL": REDIS_URL,
            "ERP_CACHE_PREFIX": prefix,
            "ERP_RATE_LIMIT_ENABLED": "false",
            "ERP_AUTH_ENABLED": "false",
            "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        }
        run_cli(env, "migrate")
        run_cli(env, "seed")
        paths = read_mix(with_summary=True)
        results: dict[int, list[wrk.WrkResult]] = {1: [], 2: []}
        for workers in (1, 2):
            with served(env, workers=workers) as url:
                wrk.run(url, paths, 2, CONNECTIONS)
                for _ in range(ROUNDS):
                    results[workers].append(wrk.run(url, paths, SECONDS, CONNECTIONS))
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)

    one = median([r.rps for r in results[1]])
    rows = [
        [
            str(workers),
            f"{median([r.rps for r in rs]):,.0f}",
            f"{median([r.p50_ms for r in rs]):.1f}",
            f"{median([r.p95_ms for r in rs]):.1f}",
            f"{median([r.p99_ms for r in rs]):.1f}",
            f"{median([r.rps for r in rs]) / one:.2f}x",
        ]
        for workers, rs in results.items()
    ]
    write_result(
        "scaling",
        {
            "title": "Scale-out: API worker processes (PostgreSQL + Redis cache)",
            "tables": [
                {
                    "caption": (
                        f"Read mix, uvicorn --workers N, wrk 1 thread / {CONNECTIONS} connections on the same "
                        f"2-core machine, {SECONDS} s x {ROUNDS} rounds, medians"
                    ),
                    "columns": ["API workers", "req/s", "p50 ms", "p95 ms", "p99 ms", "vs 1 worker"],
                    "rows": rows,
                }
            ],
            "notes": [
                "wrk, PostgreSQL and Redis share the same two cores with the workers, so the second worker "
                "competes with the load generator; on separate machines the gain is larger.",
                f"machine: {machine()}",
            ],
            "series": {
                "req/s by API workers": {
                    f"{w} worker(s)": median([r.rps for r in rs]) for w, rs in results.items()
                }
            },
        },
    )


if __name__ == "__main__":
    main()
