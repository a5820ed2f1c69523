"""Fixtures of the analyses tests: sessions on the test database, stored analyses, a recording client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.dispatch import BrokerUnavailable, JobSpec
from erp_api.analyses.repository import AnalysisRepository
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.settings import Settings

NewAnalysis = Callable[..., Awaitable[int]]


class RecordingTaskClient:
    """A task client that remembers what it was asked to publish; ``down`` makes it fail like a dead broker."""

    def __init__(self) -> None:
        self.published: list[int] = []
        self.down = False

    def jobs(self) -> Sequence[JobSpec]:
        return (
            JobSpec("run_analysis", "erp.analysis.run", "high_priority", None, periodic=False),
            JobSpec("reap_analyses", "erp.maintenance.reap_analyses", "maintenance", 60.0),
        )

    def queues(self) -> Sequence[str]:
        return ("high_priority", "maintenance")

    async def enqueue_analysis(self, analysis_id: int) -> None:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        self.published.append(analysis_id)

    async def run_job(self, name: str) -> str:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        return f"task-{name}"

    async def queue_lengths(self) -> Mapping[str, int]:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        return {"high_priority": len(self.published), "maintenance": 0}

    async def close(self) -> None:
        return None


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def charge_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as session:
        (charge,) = await ChargeRepository(session).insert_many(
            [
                {
                    "charge_number": "CH-2026-000001",
                    "product_sku": "PUMP-A",
                    "quantity": Decimal(10),
                    "unit": "pcs",
                    "line": "L1",
                    "status": "in_production",
                    "produced_at": datetime(2026, 3, 1, tzinfo=UTC),
                }
            ]
        )
    return charge.id


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
