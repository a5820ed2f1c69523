"""Fixtures on the test database without an app: sessions, a stored charge, stored analyses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.repository import AnalysisRepository
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.settings import Settings

NewAnalysis = Callable[..., Awaitable[int]]


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


def charge_row(
    number: str = "CH-2026-000001",
    *,
    quantity: Decimal = Decimal(10),
    produced_at: datetime = datetime(2026, 3, 1, tzinfo=UTC),
) -> dict[str, Any]:
    """A charge of PUMP-A in production on line L1, as ``ChargeRepository.insert_many`` takes it."""
    return {
        "charge_number": number,
        "product_sku": "PUMP-A",
        "quantity": quantity,
        "unit": "pcs",
        "line": "L1",
        "status": "in_production",
        "produced_at": produced_at,
    }


async def store_charge(sessions: async_sessionmaker[AsyncSession], row: dict[str, Any] | None = None) -> int:
    """Store ``row`` (by default ``charge_row()``) and return its id."""
    async with sessions.begin() as session:
        (charge,) = await ChargeRepository(session).insert_many([row or charge_row()])
    return int(charge.id)


@pytest.fixture
async def charge_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    return await store_charge(sessions)


@pytest.fixture
def new_analysis(sessions: async_sessionmaker[AsyncSession], charge_id: int) -> NewAnalysis:
    """Store an analysis row directly (``**values`` override the defaults); returns its id."""

    async def make(**values: Any) -> int:
        async with sessions.begin() as session:
            row = await AnalysisRepository(session).insert(
                {
                    "charge_id": charge_id,
                    "rules": "nelson",
                    "request_fingerprint": "f" * 64,
                    **values,
                }
            )
        return row.id

    return make
