"""The read mix over HTTP with cache none / memory / Redis, and the cached read path vs its ceiling.

Each configuration is a real uvicorn process on the same seeded database (PostgreSQL when reachable,
else SQLite); wrk drives it over keep-alive connections. Rounds are interleaved so that drift of the
machine hits every configuration alike; the tables quote medians over the rounds.
"""

from __future__ import annotations

import random
import re
import uuid
from contextlib import ExitStack

import httpx

from benchmarks import wrk
from benchmarks.common import (
    POSTGRES_ADMIN,
    REDIS_URL,
    RESULTS,
    machine,
    median,
    postgres_database,
    reachable,
    run_cli,
    served,
    write_result,
)
from erp_api.demo import DEMO_CHARGES, LINES, PRODUCTS

ROUNDS = 3
SECONDS = 6
CONNECTIONS = 32
HOT_CHARGES = 400


def read_mix(with_summary: bool, seed: int = 7) -> list[str]:
    """2,000 requests: 60% charge by id (hot set), 30% filtered lists, 10% quality summary."""
    rng = random.Random(seed)
    hot = rng.sample(range(1, DEMO_CHARGES + 1), HOT_CHARGES)
    lists = (
        ["/api/v1/charges?limit=50"]
        + [f"/api/v1/charges?product_sku={p}&limit=50" for p in PRODUCTS]
        + [f"/api/v1/charges?line={line}&limit=50" for line in LINES]
        + [f"/api/v1/charges?status={s}&limit=50" for s in ("released", "in_production", "quarantined")]
        + [f"/api/v1/charges?product_sku={p}&line={line}&limit=25" for p in PRODUCTS for line in LINES]
    )
    paths = []
    for _ in range(2_000):
        draw = rng.random()
        if draw < 0.6 or (draw >= 0.9 and not with_summary):
            paths.append(f"/api/v1/charges/{rng.choice(hot)}")
        elif draw < 0.9:
            paths.append(rng.choice(lists))
        else:
            paths.append(f"/api/v1/quality/summary?product_sku={rng.choice(PRODUCTS)}")
    return paths


def db_queries(base_url: str) -> float | None:
    """Statements the server has run so far, from its own metrics (None without /metrics)."""
    response = httpx.get(f"{base_url}/metrics", timeout=5)
    if response.status_code != 200:
        return None
    counts = re.findall(r"^db_query_duration_seconds_count(?:\{[^}]*\})? ([0-9.e+]+)$", response.text, re.M)
    return sum(float(count) for count in counts) if counts else None


def main() -> None:
    if not wrk.available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    use_postgres = reachable(POSTGRES_ADMIN, 5432)
    use_redis = reachable(REDIS_URL, 6379)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        if use_postgres:
            database_url = stack.enter_context(postgres_database())
        else:
            path = RESULTS / "http.sqlite3"
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            database_url = f"sqlite+aiosqlite:///{path}"
        base_env = {
            "ERP_DATABASE_URL": database_url,
            "ERP_RATE_LIMIT_ENABLED": "false",
            "ERP_AUTH_ENABLED": "false",
        }
        run_cli(base_env, "migrate")
        run_cli(base_env, "seed")

        configs = {"none": {}, "memory": {}}
        if use_redis:
            configs["redis"] = {"ERP_REDIS_URL": REDIS_URL, "ERP_CACHE_PREFIX": prefix}
        servers = {
            name: stack.enter_context(
                served(
                    {**base_env, "ERP_CACHE_BACKEND": name, **extra},
                    "benchmarks.bench_server:create_bench_app",
                )
            )
            for name, extra in configs.items()
        }
        with_summary = (
            httpx.get(
                f"{servers['none']}/api/v1/quality/summary?product_sku={PRODUCTS[0]}", timeout=30
            ).status_code
            == 200
        )
        paths = read_mix(with_summary)
        for url in servers.values():  # warm-up: connections, caches, code paths
            wrk.run(url, paths, 2, CONNECTIONS)

        mix: dict[str, list[wrk.WrkResult]] = {name: [] for name in servers}
        queries: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(ROUNDS):
            for name, url in servers.items():
                before = db_queries(url)
                result = wrk.run(url, paths, SECONDS, CONNECTIONS)
                after = db_queries(url)
                mix[name].append(result)
                if before is not None and after is not None and result.requests:
                    queries[name].append((after - before) / result.requests)

        ceiling: dict[str, list[wrk.WrkResult]] = {"cached": [], "bare": []}
        memory = servers["memory"]
        for _ in range(ROUNDS):
            ceiling["cached"].append(wrk.run(memory, ["/api/v1/charges/1"], SECONDS, CONNECTIONS))
            ceiling["bare"].append(wrk.run(memory, ["/bench/bare-charge"], SECONDS, CONNECTIONS))

        if use_redis:
            import redis

            client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                client.delete(key)

    rows = []
    for name, results in mix.items():
        rps = median([r.rps for r in results])
        rows.append(
            [
                name,
                f"{rps:,.0f}",
                f"{median([r.p50_ms for r in results]):.1f}",
                f"{median([r.p95_ms for r in results]):.1f}",
                f"{median([r.p99_ms for r in results]):.1f}",
                f"{median(queries[name]):.3f}" if queries[name] else "n/a",
                f"{rps / median([r.rps for r in mix['none']]):.2f}x",
                str(sum(r.errors for r in results)),
            ]
        )
    cached = median([r.rps for r in ceiling["cached"]])
    bare = median([r.rps for r in ceiling["bare"]])
    write_result(
        "http",
        {
            "title": "HTTP read path: cache none / memory / Redis, and the ceiling",
            "tables": [
                {
                    "caption": (
                        f"Read mix ({'60% charge by id, 30% filtered lists, 10% quality summary' if with_summary else '70% charge by id, 30% filtered lists'}; "
                        f"{'PostgreSQL' if use_postgres else 'SQLite'}; 1 uvicorn worker; wrk 1 thread, {CONNECTIONS} connections, "
                        f"{SECONDS} s x {ROUNDS} interleaved rounds; medians)"
                    ),
                    "columns": [
                        "cache",
                        "req/s",
                        "p50 ms",
                        "p95 ms",
                        "p99 ms",
                        "DB queries/request",
                        "vs none",
                        "errors",
                    ],
                    "rows": rows,
                },
                {
                    "caption": "GET /api/v1/charges/{id} cached (memory) vs a bare Starlette route returning the same bytes in the same server (target >= 0.6)",
                    "columns": ["route", "req/s (median)", "p50 ms", "p99 ms"],
                    "rows": [
                        [
                            "GET /api/v1/charges/1 (cache hit)",
                            f"{cached:,.0f}",
                            f"{median([r.p50_ms for r in ceiling['cached']]):.2f}",
                            f"{median([r.p99_ms for r in ceiling['cached']]):.2f}",
                        ],
                        [
                            "GET /bench/bare-charge (ceiling)",
                            f"{bare:,.0f}",
                            f"{median([r.p50_ms for r in ceiling['bare']]):.2f}",
                            f"{median([r.p99_ms for r in ceiling['bare']]):.2f}",
                        ],
                        ["ratio", f"{cached / bare:.2f}", "", ""],
                    ],
                },
            ],
            "notes": [f"machine: {machine()}"],
            "series": {
                "read mix req/s": {name: median([r.rps for r in results]) for name, results in mix.items()},
                "read mix p95 ms": {
                    name: median([r.p95_ms for r in results]) for name, results in mix.items()
                },
                "read mix p99 ms": {
                    name: median([r.p99_ms for r in results]) for name, results in mix.items()
                },
            },
        },
    )


if __name__ == "__main__":
    main()
