"""The read mix over HTTP with cache none / memory / Redis, and the cached read against a bare app.

Every server is the product as shipped (``benchmarks/shipped.py``): ``python -m erp_api serve``, one
worker, authentication, rate limiter, metrics and access log on, wrk sending a real admin key; all on
the same seeded database (PostgreSQL when reachable, else SQLite). With Redis the cache is tiered (the
per-process L1, on by default with Redis) and the limiter counts on Redis.

The ceiling: ``GET /api/v1/charges/{id}``, a cache hit, against ``benchmarks/bare_app.py``, a one-route
Starlette app in a process of its own, started with the same uvicorn arguments and serving the same
body and ETag. Budgets: throughput >= 0.6x the bare app's with the memory cache and >= 0.5x with the
Redis cache (L1 on), p99 <= 3x the bare app's. Redis without the L1 is measured beside them for
reference, and so is the bare app sending every header the product's answer carries (security
headers, request id, rate limits): what those headers alone cost the server.

Rounds are interleaved so that drift of the machine hits every configuration alike; the tables quote
medians over the rounds, and ratios are medians of the per-round ratios.
"""

from __future__ import annotations

import random
import re
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx

from benchmarks import wrk
from benchmarks.bare_app import bare_server
from benchmarks.common import (
    POSTGRES_ADMIN,
    REDIS_URL,
    RESULTS,
    cpu_times,
    machine,
    median,
    postgres_database,
    reachable,
    run_cli,
    write_result,
)
from benchmarks.shipped import auth_headers, new_admin_key, shipped_server
from erp_api.demo import DEMO_CHARGES, LINES, PRODUCTS
from erp_api.http import API_PREFIX

ROUNDS = 3
SECONDS = 6
CONNECTIONS = 32
HOT_CHARGES = 400
CHARGE_PATH = f"{API_PREFIX}/charges/1"
BARE = "bare Starlette app"
REDIS_L1 = "redis (L1 on)"
REDIS_NO_L1 = "redis (L1 off)"
BARE_HEADERS = "bare, the product's headers"
GZIP_CLIENT = "memory, Accept-Encoding: gzip"
CEILING_TARGETS = {"memory": 0.6, REDIS_L1: 0.5, REDIS_NO_L1: None, GZIP_CLIENT: None, BARE_HEADERS: None}
"""Throughput of the shipped cached read against the bare app's (None: measured for reference)."""
CEILING_LABELS = {
    "memory": "shipped, memory cache",
    REDIS_L1: "shipped, Redis cache + L1 (the default with Redis)",
    REDIS_NO_L1: "shipped, Redis cache alone (L1 off)",
    GZIP_CLIENT: "shipped, memory cache, a client accepting gzip as browsers do (reference)",
    BARE_HEADERS: "bare app sending the product's response headers (reference)",
}
P99_LIMIT = 3.0


def read_mix(with_summary: bool, seed: int = 7) -> list[str]:
    """2,000 requests: 60% charge by id (hot set), 30% filtered lists, 10% quality summary."""
    rng = random.Random(seed)
    hot = rng.sample(range(1, DEMO_CHARGES + 1), HOT_CHARGES)
    lists = (
        [f"{API_PREFIX}/charges?limit=50"]
        + [f"{API_PREFIX}/charges?product_sku={p}&limit=50" for p in PRODUCTS]
        + [f"{API_PREFIX}/charges?line={line}&limit=50" for line in LINES]
        + [f"{API_PREFIX}/charges?status={s}&limit=50" for s in ("released", "in_production", "quarantined")]
        + [f"{API_PREFIX}/charges?product_sku={p}&line={line}&limit=25" for p in PRODUCTS for line in LINES]
    )
    paths = []
    for _ in range(2_000):
        draw = rng.random()
        if draw < 0.6 or (draw >= 0.9 and not with_summary):
            paths.append(f"{API_PREFIX}/charges/{rng.choice(hot)}")
        elif draw < 0.9:
            paths.append(rng.choice(lists))
        else:
            paths.append(f"{API_PREFIX}/quality/summary?product_sku={rng.choice(PRODUCTS)}")
    return paths


def db_queries(base_url: str) -> float | None:
    """Statements the server has run so far, from its own metrics (None without /metrics)."""
    response = httpx.get(f"{base_url}/metrics", timeout=5)
    if response.status_code != 200:
        return None
    counts = re.findall(r"^db_query_duration_seconds_count(?:\{[^}]*\})? ([0-9.e+]+)$", response.text, re.M)
    return sum(float(count) for count in counts) if counts else None


def delete_redis_keys(pattern: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)
    finally:
        client.close()


def count_lines(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def main() -> None:
    if not wrk.available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    use_postgres = reachable(POSTGRES_ADMIN, 5432)
    use_redis = reachable(REDIS_URL, 6379)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    admin_key = new_admin_key()
    headers = auth_headers(admin_key)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        if use_postgres:
            database_url = stack.enter_context(postgres_database())
        else:
            path = RESULTS / "http.sqlite3"
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            database_url = f"sqlite+aiosqlite:///{path}"
        logs = Path(tmp)
        base_env = {"ERP_DATABASE_URL": database_url}
        run_cli(base_env, "migrate")
        run_cli(base_env, "seed")

        configs: dict[str, dict[str, str]] = {
            "none": {"ERP_CACHE_BACKEND": "none"},
            "memory": {"ERP_CACHE_BACKEND": "memory"},
        }
        if use_redis:
            for name, extra in ((REDIS_L1, {}), (REDIS_NO_L1, {"ERP_CACHE_L1": "off"})):
                own = f"{prefix}-{len(configs)}"  # cache and limiter keys of this server alone
                configs[name] = {
                    "ERP_CACHE_BACKEND": "redis",
                    "ERP_REDIS_URL": REDIS_URL,
                    "ERP_CACHE_PREFIX": own,
                    "ERP_RATE_LIMIT_PREFIX": f"{own}:ratelimit",
                    **extra,
                }
        processes = {
            name: stack.enter_context(shipped_server({**base_env, **extra}, admin_key, logs / f"{index}.log"))
            for index, (name, extra) in enumerate(configs.items())
        }
        servers = {name: server.base_url for name, server in processes.items()}
        mix_names = [name for name in servers if name != REDIS_NO_L1]
        with_summary = (
            httpx.get(
                f"{servers['none']}{API_PREFIX}/quality/summary?product_sku={PRODUCTS[0]}",
                headers=headers,
                timeout=30,
            ).status_code
            == 200
        )
        paths = read_mix(with_summary)
        for name in mix_names:  # warm-up: connections, caches, code paths
            wrk.run(servers[name], paths, 2, CONNECTIONS, headers)

        mix: dict[str, list[wrk.WrkResult]] = {name: [] for name in mix_names}
        queries: dict[str, list[float]] = {name: [] for name in mix_names}
        for _ in range(ROUNDS):
            for name in mix_names:
                url = servers[name]
                before = db_queries(url)
                result = wrk.run(url, paths, SECONDS, CONNECTIONS, headers)
                after = db_queries(url)
                mix[name].append(result)
                if before is not None and after is not None and result.requests:
                    queries[name].append((after - before) / result.requests)

        # The bare app serves what the product answers, byte for byte.
        shipped = httpx.get(f"{servers['memory']}{CHARGE_PATH}", headers=headers, timeout=10)
        shipped.raise_for_status()
        captured = {"etag": shipped.headers["etag"], "content-type": shipped.headers["content-type"]}
        for name in CEILING_TARGETS:
            if name in servers:
                other = httpx.get(f"{servers[name]}{CHARGE_PATH}", headers=headers, timeout=10)
                assert other.content == shipped.content and other.headers["etag"] == captured["etag"], name
        bare_process = stack.enter_context(bare_server(shipped.content, captured))
        bare = bare_process.base_url
        answer = httpx.get(f"{bare}{CHARGE_PATH}", timeout=10)
        assert answer.content == shipped.content and answer.headers["etag"] == captured["etag"]
        # The same answer with every header of the product's (the server adds date and length itself).
        product_headers = {
            name: value for name, value in shipped.headers.items() if name not in ("date", "content-length")
        }
        ceiling_servers = {name: processes[name] for name in CEILING_TARGETS if name in processes}
        # The same server for a client sending what browsers send; the answer is below gzip's minimum.
        ceiling_servers[GZIP_CLIENT] = processes["memory"]
        gzip_headers = {**headers, "Accept-Encoding": "gzip, deflate"}
        plain = httpx.get(f"{servers['memory']}{CHARGE_PATH}", headers=gzip_headers, timeout=10)
        assert plain.content == shipped.content and "content-encoding" not in plain.headers
        ceiling_servers[BARE_HEADERS] = stack.enter_context(bare_server(shipped.content, product_headers))
        ceiling_servers[BARE] = bare_process
        ceiling_headers = {name: gzip_headers if name == GZIP_CLIENT else headers for name in ceiling_servers}
        for name, server in ceiling_servers.items():
            wrk.run(server.base_url, [CHARGE_PATH], 2, CONNECTIONS, ceiling_headers[name])
        ceiling: dict[str, list[wrk.WrkResult]] = {name: [] for name in ceiling_servers}
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in ceiling_servers}
        for _ in range(ROUNDS):
            for name, server in ceiling_servers.items():
                before = cpu_times(server.process.pid)
                result = wrk.run(server.base_url, [CHARGE_PATH], SECONDS, CONNECTIONS, ceiling_headers[name])
                after = cpu_times(server.process.pid)
                ceiling[name].append(result)
                requests = max(result.requests, 1)
                cpu[name].append(((after[0] - before[0]) / requests, (after[1] - before[1]) / requests))
        stack.close()  # stop the servers (and drop the database): their logs are complete now
        log_lines = {name: count_lines(logs / f"{index}.log") for index, name in enumerate(configs)}
    if use_redis:
        delete_redis_keys(f"{prefix}-*")
    write_result("http", report(mix, queries, ceiling, cpu, log_lines, with_summary, use_postgres))


def report(
    mix: dict[str, list[wrk.WrkResult]],
    queries: dict[str, list[float]],
    ceiling: dict[str, list[wrk.WrkResult]],
    cpu: dict[str, list[tuple[float, float]]],
    log_lines: dict[str, int],
    with_summary: bool,
    use_postgres: bool,
) -> dict[str, object]:
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
    bare = ceiling[BARE]

    def cpu_cell(name: str) -> str:
        user = median([spent[0] for spent in cpu[name]]) * 1e6
        system = median([spent[1] for spent in cpu[name]]) * 1e6
        return f"{user + system:.0f} ({user:.0f} + {system:.0f})"

    ceiling_rows = [
        [
            f"{BARE} (ceiling)",
            f"{median([r.rps for r in bare]):,.0f}",
            f"{median([r.p50_ms for r in bare]):.2f}",
            f"{median([r.p99_ms for r in bare]):.2f}",
            cpu_cell(BARE),
            "1.00x",
            "",
            "1.00x",
            "",
            str(sum(r.errors for r in bare)),
        ]
    ]
    verdicts = []
    for name, target in CEILING_TARGETS.items():
        if name not in ceiling:
            continue
        results = ceiling[name]
        ratio = median([r.rps / b.rps for r, b in zip(results, bare, strict=True)])
        p99_ratio = median([r.p99_ms / max(b.p99_ms, 1e-3) for r, b in zip(results, bare, strict=True)])
        label = CEILING_LABELS[name]
        if target is None:
            verdict = "reference"
        else:
            met = ratio >= target and p99_ratio <= P99_LIMIT
            verdict = _verdict(met)
            verdicts.append(
                f"{label}: {ratio:.2f}x the bare app's req/s (budget >= {target}: {_verdict(ratio >= target)}), "
                f"p99 {p99_ratio:.2f}x the bare app's (budget <= {P99_LIMIT:g}x: {_verdict(p99_ratio <= P99_LIMIT)})."
            )
        ceiling_rows.append(
            [
                label,
                f"{median([r.rps for r in results]):,.0f}",
                f"{median([r.p50_ms for r in results]):.2f}",
                f"{median([r.p99_ms for r in results]):.2f}",
                cpu_cell(name),
                f"{ratio:.2f}x",
                "-" if target is None else f">= {target}x",
                f"{p99_ratio:.2f}x",
                verdict,
                str(sum(r.errors for r in results)),
            ]
        )
    mix_caption = (
        "60% charge by id, 30% filtered lists, 10% quality summary"
        if with_summary
        else "70% charge by id, 30% filtered lists"
    )
    return {
        "title": "HTTP read path as shipped: cache none / memory / Redis, and the ceiling",
        "tables": [
            {
                "caption": (
                    f"Read mix ({mix_caption}; {'PostgreSQL' if use_postgres else 'SQLite'}; python -m erp_api "
                    "serve, 1 worker, authentication + rate limiter + metrics + access log on, admin key; "
                    f"wrk 1 thread, {CONNECTIONS} connections, {SECONDS} s x {ROUNDS} interleaved rounds; medians)"
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
                "caption": (
                    f"GET {API_PREFIX}/charges/{{id}}, a cache hit, as shipped (1 worker; authentication, rate "
                    "limiter, metrics and access log on; admin key) against a bare one-route Starlette app in "
                    "a process of its own, same uvicorn arguments, serving the same body and ETag; wrk 1 thread, "
                    f"{CONNECTIONS} connections, {SECONDS} s x {ROUNDS} interleaved rounds; medians, ratios are "
                    f"medians of per-round ratios. Budget: req/s ratio as stated, p99 <= {P99_LIMIT:g}x"
                ),
                "columns": [
                    "server",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "server CPU us/request (user + system)",
                    "req/s vs bare",
                    "budget",
                    "p99 vs bare",
                    "verdict",
                    "errors",
                ],
                "rows": ceiling_rows,
            },
        ],
        "notes": [
            *verdicts,
            "Every server is `python -m erp_api serve` with its JSON logs (one access line per request) "
            "going to a file; with Redis the rate limiter counts on Redis (leased tokens). JSON log lines "
            f"written per server (all runs, warm-ups included): {log_lines}.",
            "wrk, the servers, PostgreSQL and Redis share the machine's cores: the bare app's ceiling is "
            "partly wrk's, and every row pays the same.",
            "Server CPU per request is the server process's user and system time over a round (Linux "
            "/proc) divided by the requests wrk completed in it. One worker is CPU-bound, so req/s is "
            "about its inverse: the ratios to the bare app are ratios of these costs. System time "
            "includes sending each answer and, on loopback, delivering it to wrk's socket.",
            "Every server, the bare apps too, runs the product's protocol (`erp_api/serving.py`), which "
            "sends a response's head and body in one write where uvicorn's makes two: on a small answer "
            "that write is much of what a server spends, so it lifts the bare app more than the product.",
            f"machine: {machine()}",
        ],
        "series": {
            "read mix req/s": {name: median([r.rps for r in results]) for name, results in mix.items()},
            "read mix p95 ms": {name: median([r.p95_ms for r in results]) for name, results in mix.items()},
            "read mix p99 ms": {name: median([r.p99_ms for r in results]) for name, results in mix.items()},
            "cached charge read req/s": {
                name: median([r.rps for r in results]) for name, results in ceiling.items()
            },
        },
    }


if __name__ == "__main__":
    main()
