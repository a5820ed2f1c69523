"""Fixtures of the task tests: a configured Celery app on the test database and an embedded broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from celery import Celery

from erp_api.analyses.repository import AnalysisRepository
from erp_api.charges.repository import ChargeRepository
from erp_api.settings import Settings
from tasks.celery_app import create_celery
from tasks.runtime import discard_runtime, runtime_for


@pytest.fixture
def celery_app(settings: Settings) -> Iterator[Celery]:
    app = create_celery(settings)
    yield app
    discard_runtime(app)


@pytest.fixture
def analysis_id(celery_app: Celery) -> int:
    """A queued analysis of a charge without measurements, stored through the worker runtime."""
    runtime = runtime_for(celery_app)

    async def store() -> int:
        async with runtime.sessions.begin() as session:
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
            row = await AnalysisRepository(session).insert(
                {"charge_id": charge.id, "rules": "nelson", "request_fingerprint": "f" * 64}
            )
        return row.id

    return runtime.run(store())
