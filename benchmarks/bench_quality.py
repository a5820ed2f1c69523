"""Quality on PostgreSQL: group commit, insert strategies, bulk lookup, and the cached capability summary.

One private database holds the demo charges and specs plus measurements up to 1,000,000. Three
uvicorn processes serve it: group commit on (memory cache), group commit off (one transaction per
request, memory cache), and no cache at all. wrk drives the write paths (it costs the server nothing);
reads are timed one request at a time with httpx over a keep-alive connection. Rounds of the two
group-commit configurations are interleaved so that drift of the machine hits both alike.

``history`` (also run by ``main``; alone: ``python -m benchmarks.bench_quality history [ROWS ...]``)
times the uncached reads against a short and a long history side by side, on SQLite and PostgreSQL:
summaries and trends read the rollups, measurement pages an index in the list's order; and a change of
a spec's limits, whose out-of-spec recount reads only the hours that straddle a new limit.

``quality_loop.run`` (also run by ``main``; alone: ``python -m benchmarks.bench_quality loop [ROWS ...]``)
measures batch ingestion with the on-ingest rule check, alert latency and the check's cost against
a short and a long history (``ROWS`` prior points).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
from sqlalchemy import insert

from benchmarks import quality_loop, wrk
from benchmarks.common import (
    POSTGRES_ADMIN,
    RESULTS,
    machine,
    median,
    postgres_database,
    reachable,
    write_result,
)
from benchmarks.measurement_history import History, seed_history
from benchmarks.quality_loop import driver_url, ingest_target
from cache import CacheManager, build_backend
from erp_api.db import create_engine, create_session_factory
from erp_api.demo import DEMO_SPECS, seed_charges, seed_quality
from erp_api.http import API_PREFIX
from erp_api.migrate import upgrade
from erp_api.quality.models import Measurement
from erp_api.quality.schemas import MeasurementListQuery, SpecBody, SummaryQuery
from erp_api.quality.service import QualityService
from erp_api.quality.summaries.reconciliation import rebuild as rebuild_rollups
from erp_api.quality.summaries.schemas import TrendQuery
from erp_api.settings import load_settings
from testing.processes import running_server

TOPIC = "quality"
ROUNDS = 3
SINGLE_SECONDS = 3
SINGLE_CONNECTIONS = 64
BATCH_ITEMS = 10_000
SUMMARY_ROWS = 1_000_000
LOOKUP_NUMBERS = 1_000
STRATEGY_REPEATS = 6
COLUMNS = ("charge_id", "product_sku", "parameter", "value", "measured_at", "created_at")
SECONDARY_INDEXES = {
    "ix_measurements_charge_id_parameter_measured_at": "(charge_id, parameter, measured_at, id)",
    "ix_measurements_series_points": "(product_sku, parameter, measured_at, id, voided_at, charge_id, value)",
}

POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%(body)s", "rb"):read("*a")
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


# Setup ---------------------------------------------------------------------------------------------------


async def _seed(url: str) -> tuple[int, list[tuple[int, str]]]:
    """Demo charges and specs, then measurements copied in up to SUMMARY_ROWS; returns (rows, charges)."""
    engine = create_engine(load_settings(database_url=url))
    sessions = create_session_factory(engine)
    try:
        await seed_charges(sessions)
        await seed_quality(sessions)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    try:
        charges = [
            (row["id"], row["product_sku"])
            for row in await conn.fetch(
                "SELECT id, product_sku FROM charges WHERE status <> 'planned' ORDER BY id"
            )
        ]
        missing = SUMMARY_ROWS - int(await conn.fetchval("SELECT count(*) FROM measurements"))
        rng = random.Random(7)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        records = []
        for index in range(missing):
            charge_id, product = charges[index % len(charges)]
            parameter, _unit, _lsl, _usl, target, sigma = DEMO_SPECS[product][index % 3]
            at = start + timedelta(seconds=index)
            records.append((charge_id, product, parameter, rng.gauss(target, sigma), at, at))
        # Bulk load as one would restore it: no per-row foreign-key trigger, indexes built afterwards.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for name in SECONDARY_INDEXES:
                await conn.execute(f"DROP INDEX {name}")
            await conn.copy_records_to_table("measurements", records=records, columns=COLUMNS)
            for name, columns in SECONDARY_INDEXES.items():
                await conn.execute(f"CREATE INDEX {name} ON measurements {columns}")
        await conn.execute("ANALYZE measurements")
        total = int(await conn.fetchval("SELECT count(*) FROM measurements"))
    finally:
        await conn.close()
    # COPY bypassed the writer: the rollups the summary reads are built from the rows, as a migration would.
    engine = create_engine(load_settings(database_url=url))
    try:
        await rebuild_rollups(create_session_factory(engine))
    finally:
        await engine.dispose()
    return total, charges


# Measurements --------------------------------------------------------------------------------------------


def _timed_get(http: httpx.Client, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    response = http.get(path)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.content


def _summary(cached_url: str, uncached_url: str) -> dict[str, Any]:
    path = f"{API_PREFIX}/quality/summary"
    with httpx.Client(base_url=uncached_url, timeout=60) as http:
        uncached = [_timed_get(http, path) for _ in range(ROUNDS)]
    with httpx.Client(base_url=cached_url, timeout=60) as http:
        _timed_get(http, path)
        cached = [_timed_get(http, path) for _ in range(300)]
    if cached[0][1] != uncached[0][1]:
        raise RuntimeError("the cached summary differs from the computed one")
    rows = orjson.loads(uncached[0][1])["items"]
    return {
        "uncached_ms": median([elapsed for elapsed, _ in uncached]) * 1000,
        "cached_ms": median([elapsed for elapsed, _ in cached]) * 1000,
        "series": len(rows),
        "measurements": sum(row["n"] for row in rows),
    }


def _lookup(url: str, charges: list[tuple[int, str]]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=60) as http:
        numbers = [
            http.get(f"{API_PREFIX}/charges/{charge_id}").json()["charge_number"]
            for charge_id, _ in charges[:LOOKUP_NUMBERS]
        ]
        ids = [charge_id for charge_id, _ in charges[:LOOKUP_NUMBERS]]
        body = {"numbers": numbers}
        http.post(f"{API_PREFIX}/charges/lookup", json=body).raise_for_status()
        bulk = []
        for _ in range(5):
            started = time.perf_counter()
            response = http.post(f"{API_PREFIX}/charges/lookup", json=body)
            bulk.append(time.perf_counter() - started)
            if len(response.json()["found"]) != LOOKUP_NUMBERS:
                raise RuntimeError("the lookup did not find every charge")
        # The loop that read the numbers above warmed this path; one timed pass of 1,000 requests.
        started = time.perf_counter()
        for charge_id in ids:
            http.get(f"{API_PREFIX}/charges/{charge_id}").raise_for_status()
        singles = time.perf_counter() - started
    return {"bulk_ms": median(bulk) * 1000, "singles_ms": singles * 1000}


def _wrk_post(base_url: str, path: str, body: bytes, connections: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(POST_LUA % {"body": body_file})
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url + path,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}\n{result.stderr}")
    requests, duration_us, failed, p50_us, p99_us = (int(group) for group in match.groups())
    return {
        "ok_per_s": (requests - failed) / (duration_us / 1e6),
        "failed": failed,
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
    }


def _single_ingest(
    grouped_url: str, per_request_url: str, charge_id: int
) -> dict[str, list[dict[str, float]]]:
    body = orjson.dumps({"parameter": "diameter_mm", "value": 80.01})
    path = f"{API_PREFIX}/charges/{charge_id}/measurements"
    results: dict[str, list[dict[str, float]]] = {"grouped": [], "per_request": []}
    for url in (grouped_url, per_request_url):  # warm-up: connections and code paths
        _wrk_post(url, path, body, SINGLE_CONNECTIONS, 1)
    for _ in range(ROUNDS):
        results["grouped"].append(_wrk_post(grouped_url, path, body, SINGLE_CONNECTIONS, SINGLE_SECONDS))
        results["per_request"].append(
            _wrk_post(per_request_url, path, body, SINGLE_CONNECTIONS, SINGLE_SECONDS)
        )
    return results


async def _insert_strategies(url: str, charge_id: int, product: str) -> dict[str, float]:
    """Milliseconds per 10,000-row transaction: COPY vs one INSERT of unnest() arrays vs multi-row VALUES."""
    now = datetime(2026, 7, 1, tzinfo=UTC)
    records = [
        (charge_id, product, "weight_g", 2500.0 + i % 7, now + timedelta(seconds=i), now)
        for i in range(BATCH_ITEMS)
    ]
    columns = [list(column) for column in zip(*records, strict=True)]
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    engine = create_engine(load_settings(database_url=url))
    timings: dict[str, list[float]] = {"copy": [], "unnest": [], "values": []}
    unnest = (
        f"INSERT INTO measurements ({', '.join(COLUMNS)}) SELECT * FROM unnest("
        "$1::bigint[], $2::varchar[], $3::varchar[], $4::float8[], $5::timestamptz[], $6::timestamptz[])"
    )
    rows = [dict(zip(COLUMNS, record, strict=True)) for record in records]

    async def copy() -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("measurements", records=records, columns=COLUMNS)

    async def unnest_arrays() -> None:
        async with conn.transaction():
            await conn.execute(unnest, *columns)

    async def values() -> None:
        async with engine.begin() as connection:
            await connection.execute(insert(Measurement), rows)

    strategies = {"copy": copy, "unnest": unnest_arrays, "values": values}
    try:
        for repeat in range(STRATEGY_REPEATS):
            # Rotate the order so that none always runs right after another's commit.
            names = list(strategies)
            for name in names[repeat % 3 :] + names[: repeat % 3]:
                started = time.perf_counter()
                await strategies[name]()
                timings[name].append(time.perf_counter() - started)
    finally:
        await conn.close()
        await engine.dispose()
    return {name: median(values) * 1000 for name, values in timings.items()}


# Reads against history: 10k vs 1M prior points ---------------------------------------------------------

HISTORY_SIZES = (10_000, 1_000_000)
HISTORY_REPEATS = 100
HISTORY_PRODUCT = "BENCH-HISTORY"
HISTORY_PARAMETERS = ("diameter_mm", "bore_mm", "length_mm")
# One point every 10 s: 1,000,000 points span 116 days (2,778 hourly rollups per parameter).
HISTORY_SPACING = timedelta(seconds=10)
HISTORY_START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY = History(
    product_sku=HISTORY_PRODUCT,
    parameters=HISTORY_PARAMETERS,
    seed=11,
    first_charge_number=900_000,
    start=HISTORY_START,
    spacing=HISTORY_SPACING,
)


async def _history_reads(url: str, charge_id: int, rows: int) -> dict[str, tuple[float, float]]:
    """(median ms, p95 ms) of each read, uncached, timed in-process (service call, no HTTP)."""
    engine = create_engine(load_settings(database_url=url))
    service = QualityService(create_session_factory(engine), CacheManager(build_backend("none")))
    end = HISTORY_START + rows * HISTORY_SPACING
    # The latest day at either size, between hours: whole hours from the rollups, edges from raw rows.
    day = {"from": end - timedelta(days=1, minutes=17), "to": end - timedelta(minutes=43)}
    # Points are N(10, 0.03): a few of an hour's 120 lie beyond 9.88-10.12 or 9.9-10.1; none inside
    # 99-101 (a limit typed in the wrong unit), which the hours' minimum and maximum tell alone.
    tightened = itertools.cycle([(9.88, 10.12), (9.9, 10.1)])
    beyond = itertools.cycle([(99.0, 101.0), (990.0, 1010.0)])
    reads: dict[str, Callable[[], Awaitable[bytes]]] = {
        "summary of the product": lambda: service.summary(SummaryQuery(product_sku=HISTORY_PRODUCT)),
        "summary of the product, last 24 h": lambda: service.summary(
            SummaryQuery(product_sku=HISTORY_PRODUCT, **day)
        ),
        "trend per hour, last 24 h": lambda: service.trend(
            TrendQuery(product_sku=HISTORY_PRODUCT, parameter="diameter_mm", period="hour", **day)
        ),
        "measurements, first page": lambda: service.measurement_page(charge_id, MeasurementListQuery()),
        "measurements of a parameter, first page": lambda: service.measurement_page(
            charge_id, MeasurementListQuery(parameter="bore_mm")
        ),
        # Writes, last: each recounts the series' out-of-spec points (the seeded limits are 9.9-10.1).
        "spec limits tightened, the hours at a limit recounted": lambda: _limits_changed(service, tightened),
        "spec limits beyond every point, no point read": lambda: _limits_changed(service, beyond),
    }
    timings: dict[str, tuple[float, float]] = {}
    try:
        for name, read in reads.items():
            await read()  # warm: connection, statement caches
            samples = []
            for _ in range(HISTORY_REPEATS):
                started = time.perf_counter()
                await read()
                samples.append((time.perf_counter() - started) * 1000)
            timings[name] = (median(samples), statistics.quantiles(samples, n=20)[18])
    finally:
        await engine.dispose()
    return timings


async def _limits_changed(service: QualityService, limits: Iterator[tuple[float, float]]) -> bytes:
    lsl, usl = next(limits)
    await service.put_spec(HISTORY_PRODUCT, "diameter_mm", SpecBody(unit="mm", lsl=lsl, usl=usl))
    return b""


def _history_run(backend: str, rows: int) -> dict[str, tuple[float, float]]:
    if backend == "postgresql":
        with postgres_database("erp_bench_history") as url:
            upgrade(load_settings(database_url=url))
            (charge_id,) = asyncio.run(seed_history(url, HISTORY, rows))
            return asyncio.run(_history_reads(url, charge_id, rows))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/history.sqlite3"
        upgrade(load_settings(database_url=url))
        (charge_id,) = asyncio.run(seed_history(url, HISTORY, rows))
        return asyncio.run(_history_reads(url, charge_id, rows))


def _history_target(read: str) -> str:
    if read.startswith("summary"):
        return "p95 <= 20 ms at 1M"
    if read.startswith("spec limits"):
        # A recount reads every hourly row of the series (8,760 a year), and the points of the hours
        # that straddle a new limit.
        return "the hours' rows, and the points of those at a limit"
    return "flat"


def history(sizes: tuple[int, ...] = HISTORY_SIZES) -> dict[str, Any]:
    """The reads of the quality API against a short and a long history, side by side, on both databases."""
    backends = ["sqlite"] + (["postgresql"] if reachable(POSTGRES_ADMIN, 5432) else [])
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    results = {(backend, rows): _history_run(backend, rows) for backend in backends for rows in sizes}
    tables = []
    for backend in backends:
        reads = list(results[(backend, sizes[0])])
        tables.append(
            {
                "caption": (
                    f"Uncached reads and a spec change against history on {backend}: median (p95) ms, "
                    f"{HISTORY_REPEATS} runs"
                ),
                "columns": ["read", *(f"{rows:,} points" for rows in sizes), "target"],
                "rows": [
                    [
                        read,
                        *(
                            f"{results[(backend, rows)][read][0]:.1f} ({results[(backend, rows)][read][1]:.1f})"
                            for rows in sizes
                        ),
                        _history_target(read),
                    ]
                    for read in reads
                ],
            }
        )
    notes = [
        f"machine: {machine()}",
        f"One product, one charge, {len(HISTORY_PARAMETERS)} parameters, one point every "
        f"{HISTORY_SPACING.total_seconds():.0f} s; the rollups built from the rows before timing.",
        "Each read is a QualityService call with caching off (no HTTP): what a cache miss costs.",
        f"{time.perf_counter() - began:.0f} s in all; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after on {os.cpu_count()} cores.",
    ]
    return {
        "title": "Quality reads against history (rollups and list indexes)",
        "tables": tables,
        "notes": notes,
    }


# Report --------------------------------------------------------------------------------------------------


def main() -> None:
    notes = [f"machine: {machine()}"]
    if not reachable(POSTGRES_ADMIN, 5432):
        notes.append(f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: nothing was measured")
        write_result(
            TOPIC, {"title": "Quality ingestion and summaries (PostgreSQL)", "tables": [], "notes": notes}
        )
        return
    if not wrk.available():
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    with postgres_database("erp_bench_quality") as url:
        upgrade(load_settings(database_url=url))
        loaded = time.perf_counter()
        total, charges = asyncio.run(_seed(url))
        loaded = time.perf_counter() - loaded
        env = {
            "ERP_DATABASE_URL": url,
            "ERP_BROKER_URL": f"sqla+sqlite:///{RESULTS}/quality-broker.sqlite3",
            "ERP_AUTH_ENABLED": "false",
            "ERP_RATE_LIMIT_ENABLED": "false",
            "ERP_ACCESS_LOG": "false",
            "ERP_LOG_LEVEL": "WARNING",
        }
        with ExitStack() as stack:
            grouped = stack.enter_context(running_server({**env, "ERP_CACHE_BACKEND": "memory"})).base_url
            per_request = stack.enter_context(
                running_server({**env, "ERP_CACHE_BACKEND": "memory", "ERP_INGEST_MAX_ROWS_PER_COMMIT": "1"})
            ).base_url
            uncached = stack.enter_context(running_server({**env, "ERP_CACHE_BACKEND": "none"})).base_url
            summary = _summary(grouped, uncached)
            lookup = _lookup(uncached, charges)
            target_id, target_product = asyncio.run(ingest_target(url))
            strategies = asyncio.run(_insert_strategies(url, target_id, target_product))
            singles = _single_ingest(grouped, per_request, target_id)
    notes.append(
        f"{time.perf_counter() - began:.0f} s in all; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after on {os.cpu_count()} cores (other work on the machine slows every row alike)."
    )
    write_result(TOPIC, _report(notes, total, loaded, summary, lookup, strategies, singles))


def _report(
    notes: list[str],
    total: int,
    loaded: float,
    summary: dict[str, Any],
    lookup: dict[str, Any],
    strategies: dict[str, float],
    singles: dict[str, list[dict[str, float]]],
) -> dict[str, Any]:
    grouped = median([r["ok_per_s"] for r in singles["grouped"]])
    per_request = median([r["ok_per_s"] for r in singles["per_request"]])
    host = urlsplit(POSTGRES_ADMIN).hostname
    notes += [
        f"PostgreSQL at {host}; {total:,} measurements ({summary['series']} product/parameter series) "
        f"loaded with COPY in {loaded:.1f} s before the reads were timed.",
        f"Single POSTs: wrk, {SINGLE_CONNECTIONS} connections, {SINGLE_SECONDS} s per round, {ROUNDS} interleaved rounds; "
        "group commit = default window (2 ms) and up to 1,000 rows per commit; off = "
        "ERP_INGEST_MAX_ROWS_PER_COMMIT=1, each request its own transaction on the pool.",
        "Lookup and summary: one request at a time over a keep-alive connection (httpx); lookup against "
        "the server without cache; the cached summary is served by the memory cache after one miss.",
        f"The batch path uses COPY; fastest in this run: {min(strategies, key=strategies.__getitem__)} "
        "(unnest = one INSERT ... SELECT FROM unnest() of six arrays, values = SQLAlchemy's multi-row VALUES).",
        f"failed requests: single grouped {sum(r['failed'] for r in singles['grouped']):.0f}, "
        f"single per request {sum(r['failed'] for r in singles['per_request']):.0f}",
    ]
    return {
        "title": "Quality ingestion and summaries (PostgreSQL)",
        "tables": [
            {
                "caption": f"Insert strategies for one {BATCH_ITEMS:,}-row transaction (driver level, median)",
                "columns": ["strategy", "ms", "rows/s"],
                "rows": [
                    [name, round(ms, 1), round(BATCH_ITEMS / (ms / 1000))]
                    for name, ms in sorted(strategies.items(), key=lambda item: item[1])
                ],
            },
            {
                "caption": "Concurrent single-measurement POSTs: group commit vs one transaction per request",
                "columns": ["mode", "201/s (median)", "p50 ms", "p99 ms"],
                "rows": [
                    [
                        "group commit",
                        round(grouped),
                        round(median([r["p50_ms"] for r in singles["grouped"]]), 1),
                        round(median([r["p99_ms"] for r in singles["grouped"]]), 1),
                    ],
                    [
                        "transaction per request",
                        round(per_request),
                        round(median([r["p50_ms"] for r in singles["per_request"]]), 1),
                        round(median([r["p99_ms"] for r in singles["per_request"]]), 1),
                    ],
                    ["ratio", f"{grouped / per_request:.1f}x", "", "target >= 3x"],
                ],
            },
            {
                "caption": f"{LOOKUP_NUMBERS:,} charges: one POST /charges/lookup vs single GETs (cache none)",
                "columns": ["way", "ms (median)"],
                "rows": [
                    ["POST /charges/lookup", round(lookup["bulk_ms"], 1)],
                    [f"{LOOKUP_NUMBERS:,} x GET /charges/{{id}}", round(lookup["singles_ms"], 1)],
                    ["ratio", f"{lookup['singles_ms'] / lookup['bulk_ms']:.0f}x (target >= 50x)"],
                ],
            },
            {
                "caption": f"GET /quality/summary over {summary['measurements']:,} measurements",
                "columns": ["", "ms (median)"],
                "rows": [
                    ["uncached (from the rollups)", round(summary["uncached_ms"], 1)],
                    ["cached", round(summary["cached_ms"], 3)],
                    [
                        "ratio",
                        f"{summary['uncached_ms'] / summary['cached_ms']:.0f}x (the target of >= 500x was set when "
                        "an uncached summary read every raw row: 1,587 ms at 1M; it reads rollups now)",
                    ],
                ],
            },
        ],
        "notes": notes,
        "series": {
            "single POSTs per second": {"group commit": round(grouped), "per request": round(per_request)},
        },
    }


if __name__ == "__main__":
    # ``history [ROWS...]``: only the reads against history, e.g. at a reduced size on a busy machine.
    if sys.argv[1:2] == ["history"]:
        write_result(f"{TOPIC}_history", history(tuple(int(n) for n in sys.argv[2:]) or HISTORY_SIZES))
    elif sys.argv[1:2] == ["loop"]:
        sizes = tuple(int(n) for n in sys.argv[2:]) or quality_loop.HISTORY_SIZES
        write_result(f"{TOPIC}_loop", quality_loop.run(sizes))
    else:
        main()
        write_result(f"{TOPIC}_loop", quality_loop.run())
        write_result(f"{TOPIC}_history", history())
