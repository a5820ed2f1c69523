"""The rollups stay exact through every way measurements change, on SQLite and PostgreSQL.

Measurements are written through the production paths (group-commit writes, batches, voids, spec
limit changes, retention deletes), in random order and at random (often backdated, often equal)
times; afterwards the rollup-based summary, over the whole series and over random ranges, equals a
plain recomputation from the raw rows, and the reconciliation check finds nothing to report.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.schemas import ChargeCreate
from erp_api.db import utcnow
from erp_api.quality import retention
from erp_api.quality.models import Measurement, QualitySpec
from erp_api.quality.records import NewMeasurement
from erp_api.quality.retention import RetentionCleanup
from erp_api.quality.schemas import SpecBody
from erp_api.quality.summaries.query import SeriesAggregate, summarize
from erp_api.quality.summaries.reconciliation import check
from erp_api.quality.writer import MeasurementWriter
from erp_api.resources import Resources, open_resources
from erp_api.settings import Settings
from tests.jobs.fakes import RecordingTaskClient

PRODUCT = "PUMP-A"
# Retention keeps 365 days: the series straddles that cutoff, so a retention run deletes part of it.
SPAN_MINUTES = 300


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Resources]:
    opened = await open_resources(settings, tasks=RecordingTaskClient())
    yield opened
    await opened.close()


@pytest.fixture
async def charge_id(ctx: Resources) -> int:
    charge = await ctx.charges.create(
        ChargeCreate(
            charge_number="CH-2026-000001",
            product_sku=PRODUCT,
            quantity=Decimal(10),
            unit="pcs",
            line="L1",
            produced_at=utcnow() - timedelta(days=400),
        )
    )
    return charge.id


def _start() -> datetime:
    """The series' first minute: three hours before the retention cutoff, rounded to a minute."""
    return (utcnow() - timedelta(days=365, hours=3)).replace(second=0, microsecond=0)


# Now and then a typo a trillion times too large: voiding it must leave the figures of the rest exact.
values = st.integers(-40, 40) | st.just(8 * 10**12)
points = st.lists(st.tuples(st.integers(0, SPAN_MINUTES - 1), values), min_size=1, max_size=4)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), points),
        st.tuples(st.just("write"), points),
        st.tuples(
            st.just("batch"),
            st.lists(st.tuples(st.integers(0, SPAN_MINUTES - 1), values), min_size=1, max_size=25),
        ),
        st.tuples(st.just("void"), st.integers(0, 10**6)),
        st.tuples(st.just("limits"), st.integers(-30, 0), st.integers(1, 30)),
        st.tuples(st.just("retention"), st.integers(1, 4)),
    ),
    min_size=2,
    max_size=10,
)
ranges = st.lists(st.tuples(st.integers(0, SPAN_MINUTES * 60), st.integers(1, SPAN_MINUTES * 60)), max_size=3)
_series = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations, ranges=ranges, offset=st.sampled_from([0.0, 25.0, 1e6]))
async def test_rollup_summaries_equal_a_recomputation_from_raw_rows_after_any_changes(
    ctx: Resources,
    charge_id: int,
    monkeypatch: pytest.MonkeyPatch,
    operations: list[tuple[Any, ...]],
    ranges: list[tuple[int, int]],
    offset: float,
) -> None:
    # Each example has a series of its own: a new parameter.
    parameter = f"p{next(_series)}"
    await ctx.quality.put_spec(PRODUCT, parameter, SpecBody(unit="mm", lsl=offset - 20, usl=offset + 20))
    writer = MeasurementWriter(ctx.sessions, ctx.cache)
    start = _start()
    # Small retention batches: each deletes an arbitrary part of the old rows in a transaction of its own.
    monkeypatch.setattr(retention, "BATCH", 3)

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=minute)

    for operation in operations:
        kind = operation[0]
        if kind == "write":
            rows = [
                NewMeasurement(charge_id, PRODUCT, parameter, offset + v / 8, at(m)) for m, v in operation[1]
            ]
            results = await writer.write(rows)
            assert all(not isinstance(result, Exception) for result in results)
        elif kind == "batch":
            await writer.write_batch(charge_id, [(parameter, offset + v / 8, at(m)) for m, v in operation[1]])
        elif kind == "void":
            ids = await _ids(ctx.sessions, parameter, voided=False)
            if ids:
                await ctx.quality.void_measurement(ids[operation[1] % len(ids)], "typo")
        elif kind == "limits":
            lsl, usl = offset + operation[1] / 8, offset + operation[2] / 8
            await ctx.quality.put_spec(PRODUCT, parameter, SpecBody(unit="mm", lsl=lsl, usl=usl))
        else:
            await RetentionCleanup(ctx.sessions, ctx.cache, max_age_days=365, budget_seconds=30).run()

    windows = [(start + timedelta(seconds=b), start + timedelta(seconds=b + length)) for b, length in ranges]
    for measured_from, measured_to in [(None, None), *windows]:
        async with ctx.sessions() as session:
            got = await summarize(
                session,
                product_sku=PRODUCT,
                parameter=parameter,
                measured_from=measured_from,
                measured_to=measured_to,
            )
        want = await _recomputed(ctx.sessions, parameter, measured_from, measured_to)
        _assert_same(got, want)
    assert await check(ctx.sessions) == []


async def test_concurrent_writers_lose_no_update(ctx: Resources, charge_id: int) -> None:
    """Writers of one series in parallel transactions, their points interleaved in time."""
    await ctx.quality.put_spec(PRODUCT, "diameter", SpecBody(unit="mm", lsl=-1.0, usl=1.0))
    writer = MeasurementWriter(ctx.sessions, ctx.cache)
    start, rng = _start(), random.Random(3)

    async def write(worker: int) -> None:
        for step in range(12):
            minute = rng.randrange(0, SPAN_MINUTES)
            value = rng.choice([-1.5, -0.5, 0.0, 0.25, 1.25])
            (result,) = await writer.write(
                [NewMeasurement(charge_id, PRODUCT, "diameter", value, start + timedelta(minutes=minute))]
            )
            assert not isinstance(result, Exception), (worker, step, result)

    await asyncio.gather(*(write(worker) for worker in range(6)))
    async with ctx.sessions() as session:
        got = await summarize(
            session, product_sku=PRODUCT, parameter="diameter", measured_from=None, measured_to=None
        )
    _assert_same(got, await _recomputed(ctx.sessions, "diameter", None, None))
    assert got[0].n == 72
    assert await check(ctx.sessions) == []


# Recomputation from raw rows ---------------------------------------------------------------------


async def _ids(sessions: async_sessionmaker[AsyncSession], parameter: str, *, voided: bool) -> list[int]:
    stmt = select(Measurement.id).where(Measurement.parameter == parameter)
    stmt = stmt.where(Measurement.voided_at.is_not(None) if voided else Measurement.voided_at.is_(None))
    async with sessions() as session:
        return sorted((await session.scalars(stmt.order_by(Measurement.id))).all())


async def _recomputed(
    sessions: async_sessionmaker[AsyncSession],
    parameter: str,
    measured_from: datetime | None,
    measured_to: datetime | None,
) -> list[dict[str, Any]]:
    """The summary row computed the plain way: every non-voided point of the range, in time order."""
    stmt = select(Measurement.value).where(
        Measurement.parameter == parameter, Measurement.voided_at.is_(None)
    )
    if measured_from is not None:
        stmt = stmt.where(Measurement.measured_at >= measured_from)
    if measured_to is not None:
        stmt = stmt.where(Measurement.measured_at < measured_to)
    async with sessions() as session:
        series = list((await session.scalars(stmt.order_by(Measurement.measured_at, Measurement.id))).all())
        spec = (
            await session.execute(
                select(QualitySpec.lsl, QualitySpec.usl).where(
                    QualitySpec.product_sku == PRODUCT, QualitySpec.parameter == parameter
                )
            )
        ).one()
    if not series:
        return []
    lsl, usl = spec
    ranges = [abs(b - a) for a, b in itertools.pairwise(series)]
    return [
        {
            "n": len(series),
            "mean": statistics.mean(series),
            "std": statistics.stdev(series) if len(series) > 1 else None,
            "min": min(series),
            "max": max(series),
            "mr_bar": statistics.mean(ranges) if ranges else None,
            "out_of_spec": sum(
                (lsl is not None and v < lsl) or (usl is not None and v > usl) for v in series
            ),
        }
    ]


def _assert_same(got: list[SeriesAggregate], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for row, expected in zip(got, want, strict=True):
        scale = max(abs(expected["min"]), abs(expected["max"]), 1.0)
        for name, value in expected.items():
            actual = getattr(row, name)
            if value is None or isinstance(value, int):
                assert actual == value, name
            else:
                assert actual == pytest.approx(value, rel=1e-9, abs=1e-12 * scale), name
