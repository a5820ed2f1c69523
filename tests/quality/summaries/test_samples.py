"""Sample reads hand over the stored doubles bit for bit, latest points only, in series order."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.quality.models import Measurement
from erp_api.quality.summaries import samples
from erp_api.quality.summaries.samples import Range, SampleRead, read_samples
from tests.database import charge_row, store_charge
from tests.quality.helpers import T0

# Doubles a text or rounding step would change: thirds, tenths, the extremes, denormals, and
# neighbours one ulp apart.
AWKWARD = [
    1 / 3,
    0.1,
    0.1 + 0.2,
    25.000000000000004,
    25.0,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    2.2250738585072014e-308,
    -123456.78901234567,
    np.nextafter(10.0, 11.0).item(),
]


async def _second_charge(sessions: async_sessionmaker[AsyncSession]) -> int:
    return await store_charge(sessions, charge_row("CH-2026-000002", produced_at=T0))


async def _store(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, object]]) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(Measurement), rows)


def _row(charge: int, value: float, minute: float, parameter: str = "diameter_mm") -> dict[str, object]:
    return {
        "charge_id": charge,
        "product_sku": "PUMP-A",
        "parameter": parameter,
        "value": value,
        "measured_at": T0 + timedelta(minutes=minute),
        "created_at": T0,
    }


async def _expected(
    session: AsyncSession, column: str, owner: str | int, limit: int, between: Range
) -> tuple[list[int], bytes]:
    """The latest ``limit`` non-voided points by a plain ORM query, in series order."""
    m = Measurement
    stmt = select(m.charge_id, m.value).where(
        getattr(m, column) == owner, m.parameter == "diameter_mm", m.voided_at.is_(None)
    )
    start, end = between
    if start is not None:
        stmt = stmt.where(m.measured_at >= start)
    if end is not None:
        stmt = stmt.where(m.measured_at < end)
    latest_first = await session.execute(stmt.order_by(m.measured_at.desc(), m.id.desc()).limit(limit))
    rows = list(latest_first)[::-1]
    return [row[0] for row in rows], np.array([row[1] for row in rows], dtype=np.float64).tobytes()


async def test_samples_are_the_latest_stored_doubles_in_series_order(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    other = await _second_charge(sessions)
    # Stored out of time order: backdated points, equal timestamps (the id breaks the tie), two
    # charges interleaved, another parameter, and a voided point that no sample may hold.
    rows = [_row(charge_id if i % 3 else other, value, minute=(7 * i) % 5) for i, value in enumerate(AWKWARD)]
    rows += [_row(other, 99.5, minute=5, parameter="bore_mm"), _row(charge_id, 42.0, minute=3)]
    await _store(sessions, rows)
    async with sessions.begin() as session:
        voided = (await session.execute(select(Measurement).where(Measurement.value == 42.0))).scalar_one()
        voided.voided_at = T0
    ranges: list[Range] = [(None, None), (T0 + timedelta(minutes=2), T0 + timedelta(minutes=4))]
    async with sessions() as session:
        await session.execute(select(1))  # read_samples runs inside an open transaction
        for between in ranges:
            reads = [
                (("all", between), SampleRead("PUMP-A", "diameter_mm", 100)),
                (("latest", between), SampleRead("PUMP-A", "diameter_mm", 4)),
                (("nothing", between), SampleRead("PUMP-B", "diameter_mm", 100)),
            ]
            found = await read_samples(session, "product_sku", reads, between)
            assert set(found) == {("all", between), ("latest", between)}
            for (kind, _), limit in ((("all", between), 100), (("latest", between), 4)):
                sample = found[(kind, between)]
                charges, values = await _expected(session, "product_sku", "PUMP-A", limit, between)
                assert sample.charges.tolist() == charges, kind
                assert sample.values.tobytes() == values, kind
            per_charge = await read_samples(
                session, "charge_id", [(other, SampleRead(other, "diameter_mm", 3))], between
            )
            charges, values = await _expected(session, "charge_id", other, 3, between)
            assert per_charge[other].charges.tolist() == charges
            assert per_charge[other].values.tobytes() == values


def _random_doubles(size: int) -> npt.NDArray[np.float64]:
    """Finite doubles from random bit patterns: every exponent, denormals and the extremes among them."""
    bits = np.random.default_rng(20261201).integers(0, 2**64, size=size, dtype=np.uint64)
    doubles = bits.view(np.float64)
    return doubles[np.isfinite(doubles)]


async def _round_trip(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, doubles: npt.NDArray[np.float64]
) -> None:
    """``doubles`` stored as one series come back from a sample read bit for bit, in series order."""
    await _store(sessions, [_row(charge_id, float(v), minute=i / 100) for i, v in enumerate(doubles)])
    async with sessions() as session:
        await session.execute(select(1))
        found = await read_samples(
            session, "product_sku", [("all", SampleRead("PUMP-A", "diameter_mm", 10_000))], (None, None)
        )
        charges, values = await _expected(session, "product_sku", "PUMP-A", 10_000, (None, None))
    assert found["all"].values.tobytes() == values
    assert found["all"].charges.tolist() == charges
    # -0.0 aside (SQLite stores it as 0.0), the values are the ones written.
    assert np.array_equal(found["all"].values, doubles)


async def test_any_stored_double_comes_back_bit_for_bit(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    # SQLite hands a read over as text: every finite double must parse back to the stored bits (its
    # own ``quote`` would not: one in 75,000 came back one ulp off). Two of these are below 2**-1020,
    # too small for the integer form: the read is read again in decimal.
    doubles = _random_doubles(3_000)
    assert np.count_nonzero(np.abs(doubles) < 2.0**-1020) > 0
    await _round_trip(sessions, charge_id, doubles)


async def test_values_across_every_power_of_two_come_back_bit_for_bit_as_integers(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's integer form, m * 2**e with e from log2: each power of two from 2**-1020 up and its
    # neighbours, where log2 may round either way, random doubles of that range, zero, the extremes.
    if not samples._sqlite_has_math_functions():
        pytest.skip("this SQLite has no math functions: every read is in decimal")

    def refused(*_args: object) -> None:
        raise AssertionError("read again in decimal")

    monkeypatch.setattr(samples, "_from_decimal", refused)
    powers = np.ldexp(1.0, np.arange(-1020, 1024))
    doubles = np.concatenate(
        [
            powers,
            np.nextafter(powers, 0.0),
            np.nextafter(powers[:-1], np.inf),
            -powers[::7],
            [0.0, -1.7976931348623157e308, 1.7976931348623157e308],
        ]
    )
    randoms = _random_doubles(3_000)
    doubles = np.concatenate([doubles, randoms[np.abs(randoms) >= 2.0**-1020]])[:10_000]
    await _round_trip(sessions, charge_id, doubles)


async def test_a_sqlite_without_math_functions_reads_in_decimal(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite's log2, floor and pow are optional (SQLITE_ENABLE_MATH_FUNCTIONS): without them, as here.
    monkeypatch.setattr(samples, "_sqlite_has_math_functions", lambda: False)
    await _round_trip(sessions, charge_id, _random_doubles(3_000))
