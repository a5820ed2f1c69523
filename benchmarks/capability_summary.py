"""The uncached capability summary against a short and a long history, on SQLite and PostgreSQL.

One product, three parameters in turn, charges of 1,000 points; the rollups are built from the bulk
loaded rows before timing, and each read is a ``QualityService`` call with caching off (no HTTP):
what a cache miss costs, in a process whose startup heap is frozen as a server's is
(``freeze_startup_heap``). ``bench_spc`` reports it with its budget (issue #13): p95 <= 20 ms at
1,000,000 measurements, and a median no more than 3x its median at 10,000. The history is seeded by
``benchmarks.measurement_history``, as ``bench_quality``'s is.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from typing import Any

import orjson

from benchmarks.common import POSTGRES_ADMIN, postgres_database, reachable
from benchmarks.measurement_history import History, seed_history
from cache import CacheManager, build_backend
from erp_api.app import freeze_startup_heap
from erp_api.db import create_engine, create_session_factory
from erp_api.migrate import upgrade
from erp_api.quality.schemas import SummaryQuery
from erp_api.quality.service import QualityService
from erp_api.quality.summaries.capability import SAMPLE_SIZE
from erp_api.settings import load_settings

# p95 at the largest size.
SUMMARY_TARGET_MS = 20.0
SUMMARY_GROWTH = 3.0
SUMMARY_SIZES = (10_000, 1_000_000)
SUMMARY_REPEATS = 100
SUMMARY_PRODUCT = "BENCH-CAPABILITY"
SUMMARY_PARAMETERS = ("diameter_mm", "bore_mm", "length_mm")
POINTS_PER_CHARGE = 1_000
SUMMARY_HISTORY = History(
    product_sku=SUMMARY_PRODUCT,
    parameters=SUMMARY_PARAMETERS,
    seed=12,
    first_charge_number=800_000,
    points_per_charge=POINTS_PER_CHARGE,
    target=10.0,
)


async def _summary_reads(url: str) -> tuple[float, float]:
    """(median ms, p95 ms) of the uncached summary of the product, in-process (service call, no HTTP)."""
    engine = create_engine(load_settings(database_url=url))
    service = QualityService(create_session_factory(engine), CacheManager(build_backend("none")))
    query = SummaryQuery(product_sku=SUMMARY_PRODUCT)
    try:
        rows = orjson.loads(await service.summary(query))["items"]  # warm: connection, statement caches
        if len(rows) != len(SUMMARY_PARAMETERS) or any(
            row["anderson_darling"] is None or row["sample"]["size"] > SAMPLE_SIZE for row in rows
        ):
            raise RuntimeError("the summary lacks its capability figures")
        freeze_startup_heap()  # as a server does once it has started
        samples = []
        for _ in range(SUMMARY_REPEATS):
            started = time.perf_counter()
            await service.summary(query)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return statistics.median(samples), statistics.quantiles(samples, n=20)[18]


def _summary_run(backend: str, rows: int) -> tuple[float, float]:
    if backend == "postgresql":
        with postgres_database("erp_bench_capability") as url:
            upgrade(load_settings(database_url=url))
            asyncio.run(seed_history(url, SUMMARY_HISTORY, rows))
            return asyncio.run(_summary_reads(url))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/capability.sqlite3"
        upgrade(load_settings(database_url=url))
        asyncio.run(seed_history(url, SUMMARY_HISTORY, rows))
        return asyncio.run(_summary_reads(url))


SummaryResults = dict[str, dict[int, tuple[float, float]]]
"""(median ms, p95 ms) per database and number of measurements"""


def summary_results(sizes: tuple[int, ...] = SUMMARY_SIZES) -> SummaryResults:
    """The uncached summary with every capability figure at a short and a long history, both databases."""
    backends = ["sqlite"] + (["postgresql"] if reachable(POSTGRES_ADMIN, 5432) else [])
    return {backend: {size: _summary_run(backend, size) for size in sizes} for backend in backends}


def summary_table(results: SummaryResults) -> dict[str, Any]:
    rows: list[list[object]] = []
    sizes: list[int] = []
    for backend, timings in results.items():
        sizes = sorted(timings)
        growth = timings[sizes[-1]][0] / timings[sizes[0]][0]
        verdict = (
            "within" if timings[sizes[-1]][1] <= SUMMARY_TARGET_MS and growth <= SUMMARY_GROWTH else "OVER"
        )
        rows.append(
            [
                backend,
                *(f"{timings[size][0]:.1f} ({timings[size][1]:.1f})" for size in sizes),
                f"{growth:.2f}x",
                f"{verdict}: p95 <= {SUMMARY_TARGET_MS:.0f} ms at {sizes[-1]:,}, <= {SUMMARY_GROWTH:.0f}x",
            ]
        )
    return {
        "caption": (
            f"GET /quality/summary of one product ({len(SUMMARY_PARAMETERS)} parameters, charges of "
            f"{POINTS_PER_CHARGE:,} points) with every capability figure, uncached: median (p95) ms of "
            f"{SUMMARY_REPEATS} in-process service calls; raw-value figures from the latest {SAMPLE_SIZE:,} "
            "points per row"
        ),
        "columns": ["database", *(f"{size:,} measurements" for size in sizes), "growth", "budget"],
        "rows": rows,
    }


def summary_budgets(results: SummaryResults) -> list[dict[str, Any]]:
    """The summary's figures beside their budgets: the p95 at the largest size, the median's growth."""
    budgets: list[dict[str, Any]] = []
    for backend, timings in results.items():
        sizes = sorted(timings)
        largest = timings[sizes[-1]][0]
        budgets.append(
            {
                "figure": f"uncached summary with capability, {sizes[-1]:,} measurements, {backend} (p95 ms)",
                "measured": round(timings[sizes[-1]][1], 1),
                "budget": SUMMARY_TARGET_MS,
                "better": "lower",
            }
        )
        budgets.append(
            {
                "figure": f"its growth from {sizes[0]:,} measurements, {backend} (times)",
                "measured": round(largest / timings[sizes[0]][0], 2),
                "budget": SUMMARY_GROWTH,
                "better": "lower",
            }
        )
    return budgets
