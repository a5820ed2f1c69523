"""The uncached capability summary against a short and a long history, on SQLite and PostgreSQL.

One product, three parameters in turn, charges of 1,000 points; the rollups are built from the bulk
loaded rows before timing, and each read is a ``QualityService`` call with caching off (no HTTP):
what a cache miss costs. ``bench_spc`` reports it with its budget: 50 ms at 1,000,000 measurements,
and no more than 3x its time at 10,000.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from benchmarks.common import POSTGRES_ADMIN, postgres_database, reachable
from cache import CacheManager, build_backend
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.migrate import upgrade
from erp_api.quality.models import QualitySpec
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.schemas import SummaryQuery
from erp_api.quality.service import QualityService
from erp_api.quality.summaries.capability import SAMPLE_SIZE
from erp_api.quality.summaries.reconciliation import rebuild as rebuild_rollups
from erp_api.settings import load_settings

SUMMARY_TARGET_MS = 50.0
SUMMARY_GROWTH = 3.0
SUMMARY_SIZES = (10_000, 1_000_000)
SUMMARY_REPEATS = 30
SUMMARY_PRODUCT = "BENCH-CAPABILITY"
SUMMARY_PARAMETERS = ("diameter_mm", "bore_mm", "length_mm")
POINTS_PER_CHARGE = 1_000
SUMMARY_START = datetime(2026, 1, 1, tzinfo=UTC)


async def _summary_seed(url: str, rows: int) -> None:
    """``rows`` measurements of one product, three parameters in turn, charges of 1,000 points each."""
    engine = create_engine(load_settings(database_url=url))
    sessions = create_session_factory(engine)
    charges = max(1, rows // POINTS_PER_CHARGE)
    try:
        async with sessions.begin() as session:
            inserted = await ChargeRepository(session).insert_many(
                [
                    {
                        "charge_number": f"CH-2026-{800000 + i}",
                        "product_sku": SUMMARY_PRODUCT,
                        "quantity": Decimal(1),
                        "unit": "pcs",
                        "line": "L1",
                        "status": "in_production",
                        "produced_at": SUMMARY_START,
                    }
                    for i in range(charges)
                ]
            )
            ids = [charge.id for charge in inserted]
            for parameter in SUMMARY_PARAMETERS:
                session.add(
                    QualitySpec(
                        product_sku=SUMMARY_PRODUCT,
                        parameter=parameter,
                        unit="mm",
                        lsl=9.9,
                        usl=10.1,
                        target=10.0,
                    )
                )
        rng = random.Random(12)
        for start in range(0, rows, 100_000):
            records = [
                (
                    ids[min(i // POINTS_PER_CHARGE, charges - 1)],
                    SUMMARY_PRODUCT,
                    SUMMARY_PARAMETERS[i % 3],
                    rng.gauss(10.0, 0.03),
                    SUMMARY_START + i * timedelta(seconds=10),
                    SUMMARY_START,
                )
                for i in range(start, min(start + 100_000, rows))
            ]
            async with sessions.begin() as session:
                await MeasurementRepository(session).insert_bulk(records)
        # Bulk-loaded rows bypass the writer: their rollups are built as the migration builds them.
        await rebuild_rollups(sessions)
        async with engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE")
            await connection.commit()
    finally:
        await engine.dispose()


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
            asyncio.run(_summary_seed(url, rows))
            return asyncio.run(_summary_reads(url))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/capability.sqlite3"
        upgrade(load_settings(database_url=url))
        asyncio.run(_summary_seed(url, rows))
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
            "within" if timings[sizes[-1]][0] <= SUMMARY_TARGET_MS and growth <= SUMMARY_GROWTH else "OVER"
        )
        rows.append(
            [
                backend,
                *(f"{timings[size][0]:.1f} ({timings[size][1]:.1f})" for size in sizes),
                f"{growth:.2f}x",
                f"{verdict}: <= {SUMMARY_TARGET_MS:.0f} ms at {sizes[-1]:,}, <= {SUMMARY_GROWTH:.0f}x",
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
    """The summary's figures beside their budgets: the time at the largest size, and its growth."""
    budgets: list[dict[str, Any]] = []
    for backend, timings in results.items():
        sizes = sorted(timings)
        largest = timings[sizes[-1]][0]
        budgets.append(
            {
                "figure": f"uncached summary with capability, {sizes[-1]:,} measurements, {backend} (median ms)",
                "measured": round(largest, 1),
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
