"""Query plans of a charge's measurement list: with or without ``parameter``, first page or a later
one, an index delivers the rows in the list's order (measured_at, id), so a page reads its LIMIT of
rows and sorts nothing, however long the charge's series."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from erp_api.db import create_engine, create_session_factory
from erp_api.quality.models import Measurement
from erp_api.quality.repository import MeasurementRepository
from erp_api.settings import Settings

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def measured(engine: AsyncEngine, charge_id: int) -> int:
    """The charge with 3,000 measurements of three parameters."""
    sessions = create_session_factory(engine)
    rows = [
        {
            "charge_id": charge_id,
            "product_sku": "PUMP-A",
            "parameter": ("diameter", "bore", "weight")[i % 3],
            "value": float(i),
            "measured_at": T0 + timedelta(seconds=i),
            "created_at": T0,
        }
        for i in range(3_000)
    ]
    async with sessions.begin() as session:
        await session.execute(insert(Measurement), rows)
    if engine.dialect.name == "sqlite":
        # The test's own database file: its statistics make SQLite plan as on a real table.
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()
    return charge_id


async def _plan(engine: AsyncEngine, charge_id: int, **page: Any) -> str:
    """The plan of the statement ``MeasurementRepository.page`` runs, as the database explains it."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with async_sessionmaker(engine)() as session:
            await MeasurementRepository(session).page(charge_id, limit=51, **page)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    (statement, parameters), *_ = [item for item in captured if "FROM measurements" in item[0]]
    postgres = engine.dialect.name == "postgresql"
    async with engine.connect() as connection:
        if postgres:
            # Statistics, so that PostgreSQL plans as on a real table; analysed in this transaction,
            # which is rolled back: the session's database is shared, and its statistics must not
            # outlive this test.
            await connection.exec_driver_sql("ANALYZE measurements")
        explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        rows = (await connection.exec_driver_sql(explain + statement, parameters)).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("page", "index"),
    [
        ({"parameter": None, "after": None}, "ix_measurements_charge_id_measured_at"),
        (
            {"parameter": None, "after": (T0 + timedelta(seconds=1500), 1500)},
            "ix_measurements_charge_id_measured_at",
        ),
        ({"parameter": "bore", "after": None}, "ix_measurements_charge_id_parameter_measured_at"),
        (
            {"parameter": "bore", "after": (T0 + timedelta(seconds=1500), 1500)},
            "ix_measurements_charge_id_parameter_measured_at",
        ),
    ],
    ids=["all-first", "all-later", "parameter-first", "parameter-later"],
)
async def test_a_page_of_a_charges_measurements_is_one_index_range_without_a_sort(
    engine: AsyncEngine, measured: int, page: dict[str, Any], index: str
) -> None:
    plan = await _plan(engine, measured, **page)
    if engine.dialect.name == "postgresql":
        assert plan.splitlines()[0].startswith("Limit"), plan
        assert f"Index Scan using {index} on measurements" in plan, plan
        assert "Sort" not in plan, plan
    else:
        assert f"USING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
