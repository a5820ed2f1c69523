"""The reads of the charts (``ChartDataRepository``) across more charges than one page of the charges'
repository: subgroups are the latest qualifying charges in production order however many charges
without values come after them; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.repository import IN_CHUNK, ChargeRepository
from erp_api.quality.charts.data import ChargeSubgroup, ChartDataRepository
from erp_api.quality.models import Measurement

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHARGES = IN_CHUNK + 205


def _number(serial: int) -> str:
    return f"CH-2026-{serial:06d}"


@pytest.fixture
async def charge_ids(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    """The charges of PUMP-A by serial, serial ``s`` produced ``s`` hours after T0; inserted newest
    first, so their ids run against production order."""
    rows = [
        {
            "charge_number": _number(serial),
            "product_sku": "PUMP-A",
            "quantity": Decimal(10),
            "unit": "pcs",
            "line": "L1",
            "status": "in_production",
            "produced_at": T0 + timedelta(hours=serial),
        }
        for serial in reversed(range(CHARGES))
    ]
    async with sessions.begin() as session:
        charges = await ChargeRepository(session).insert_many(rows)
    return {int(charge.charge_number[-6:]): charge.id for charge in charges}


async def _measure(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, values: list[float], *, voided: int = 0
) -> None:
    """``values`` of diameter_mm for the charge, measured in reverse insertion order (the last value
    first); the first ``voided`` of them voided."""
    rows = [
        {
            "charge_id": charge_id,
            "product_sku": "PUMP-A",
            "parameter": "diameter_mm",
            "value": value,
            "measured_at": T0 + timedelta(minutes=len(values) - index),
            "created_at": T0,
            "voided_at": T0 if index < voided else None,
        }
        for index, value in enumerate(values)
    ]
    async with sessions.begin() as session:
        await session.execute(insert(Measurement), rows)


async def test_subgroups_are_the_latest_qualifying_charges_behind_a_page_of_charges_without_values(
    sessions: async_sessionmaker[AsyncSession], charge_ids: dict[int, int]
) -> None:
    # The newest IN_CHUNK + 200 charges have no subgroup: no values, one value, or one left after a void.
    await _measure(sessions, charge_ids[0], [1.0, 2.0])
    await _measure(sessions, charge_ids[1], [3.0, 4.0])
    await _measure(sessions, charge_ids[2], [5.0, 6.0, 7.0])
    await _measure(sessions, charge_ids[3], [8.0, 9.0], voided=1)
    await _measure(sessions, charge_ids[CHARGES - 1], [10.0])
    async with sessions() as session:
        data = ChartDataRepository(session)
        latest_two = await data.charge_subgroups("PUMP-A", "diameter_mm", limit=2, max_values=100)
        all_of_them = await data.charge_subgroups("PUMP-A", "diameter_mm", limit=10, max_values=100)
        within_four_values = await data.charge_subgroups("PUMP-A", "diameter_mm", limit=10, max_values=4)
        other = await data.charge_subgroups("PUMP-A", "bore_mm", limit=10, max_values=100)
    # Oldest first, each charge's values in measured order (the reverse of their insertion here).
    assert latest_two == [
        ChargeSubgroup(_number(1), [4.0, 3.0]),
        ChargeSubgroup(_number(2), [7.0, 6.0, 5.0]),
    ]
    assert all_of_them == [ChargeSubgroup(_number(0), [2.0, 1.0]), *latest_two]
    # Charge 2's three values fit; charge 1's two more would make five.
    assert within_four_values == [ChargeSubgroup(_number(2), [7.0, 6.0, 5.0])]
    assert other == []
