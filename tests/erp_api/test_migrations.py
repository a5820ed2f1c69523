"""Migrations upgrade and downgrade cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import inspect

from erp_api.db import create_engine
from erp_api.migrate import downgrade, upgrade
from erp_api.settings import Settings, load_settings
from tests import services


async def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


def _round_trip(settings: Settings) -> None:
    upgrade(settings)
    tables = asyncio.run(_tables(settings))
    assert {"charges", "charge_status_changes", "alembic_version"} <= tables
    downgrade(settings, "base")
    assert asyncio.run(_tables(settings)) <= {"alembic_version"}
    upgrade(settings)
    assert asyncio.run(_tables(settings)) == tables


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    _round_trip(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/m.sqlite3"))


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade() -> None:
    name, url = services.create_postgres_database()
    try:
        _round_trip(load_settings(database_url=url))
    finally:
        services.drop_postgres_database(name)


def _drift(settings: Settings) -> list[object]:
    """What autogenerate would still change after the migrations: the models and migrations must agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from erp_api.db import Base
    from erp_api.models import load_all

    load_all()

    async def compare() -> list[object]:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: list(
                        compare_metadata(
                            MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                        )
                    )
                )
        finally:
            await engine.dispose()

    upgrade(settings)
    return asyncio.run(compare())


def test_sqlite_schema_after_migrations_matches_the_models(tmp_path: Path) -> None:
    assert _drift(load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/d.sqlite3")) == []


@pytest.mark.postgres
def test_postgres_schema_after_migrations_matches_the_models() -> None:
    name, url = services.create_postgres_database()
    try:
        assert _drift(load_settings(database_url=url)) == []
    finally:
        services.drop_postgres_database(name)


@dataclass(frozen=True)
class AtRevision0011:
    """A PostgreSQL database of a test's own, migrated to 0011: its settings and a plain asyncpg DSN."""

    settings: Settings
    dsn: str


@pytest.fixture
def at_0011() -> Iterator[AtRevision0011]:
    name, url = services.create_postgres_database()
    try:
        settings = load_settings(database_url=url)
        upgrade(settings, "0011_analysis_heartbeats")
        yield AtRevision0011(settings, url.replace("postgresql+asyncpg://", "postgresql://"))
    finally:
        services.drop_postgres_database(name)


# Rows written as the schema of 0011 takes them, by hand: the tests below run between revisions.
INSERT_CHARGE = (
    "INSERT INTO charges (charge_number, product_sku, quantity, unit, line, status, produced_at,"
    " created_at, updated_at, version) VALUES ('CH-2026-000001', 'PUMP-A', 10, 'pcs', 'L1',"
    " 'in_production', now(), now(), now(), 1) RETURNING id"
)
INSERT_MEASUREMENT = (
    "INSERT INTO measurements (charge_id, product_sku, parameter, value, measured_at, created_at)"
    " VALUES ($1, 'PUMP-A', 'diameter_mm', $2, now(), now())"
)


@pytest.mark.postgres
def test_postgres_series_index_is_rebuilt_without_holding_writes(at_0011: AtRevision0011) -> None:
    """0012 replaces an index of the largest table: ingestion must go on while it is built.

    An ingestion transaction is open when the upgrade starts (so the build has to wait for it); a
    second ingestion, started while the build waits, must insert at once. A plain CREATE INDEX would
    queue for a lock that conflicts with every writer, and hold the second one behind it.
    """
    import asyncpg

    settings, dsn = at_0011.settings, at_0011.dsn

    async def scenario() -> None:
        setup = await asyncpg.connect(dsn, timeout=5)
        try:
            charge = await setup.fetchval(INSERT_CHARGE)
        finally:
            await setup.close()
        open_ingestion = await asyncpg.connect(dsn, timeout=5)
        later_ingestion = await asyncpg.connect(dsn, timeout=5, server_settings={"lock_timeout": "3s"})
        try:
            transaction = open_ingestion.transaction()
            await transaction.start()
            await open_ingestion.execute(INSERT_MEASUREMENT, charge, 1.0)
            upgrading = asyncio.create_task(
                asyncio.to_thread(upgrade, settings, "0012_measurement_series_points")
            )
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE query ILIKE 'CREATE INDEX%' AND wait_event_type = 'Lock'"
            )
            for _ in range(300):
                if await later_ingestion.fetchval(waiting) or upgrading.done():
                    break
                await asyncio.sleep(0.05)
            assert not upgrading.done(), "the index build did not wait for the open ingestion"
            # Fails on its lock_timeout if it is held behind the build.
            await later_ingestion.execute(INSERT_MEASUREMENT, charge, 2.0)
            await transaction.commit()
            await asyncio.wait_for(upgrading, timeout=60)
            indexes = {
                row["indexname"]: row["indexdef"]
                for row in await later_ingestion.fetch(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'measurements'"
                )
            }
            valid = await later_ingestion.fetchval(
                "SELECT indisvalid FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
                " WHERE relname = 'ix_measurements_series_points'"
            )
            assert await later_ingestion.fetchval("SELECT count(*) FROM measurements") == 2
        finally:
            await open_ingestion.close()
            await later_ingestion.close()
        assert valid is True
        assert "ix_measurements_product_sku_parameter_measured_at" not in indexes
        assert (
            "(product_sku, parameter, measured_at, id, voided_at, charge_id, value)"
            in (indexes["ix_measurements_series_points"])
        )

    asyncio.run(scenario())
    downgrade(settings, "0011_analysis_heartbeats")  # concurrently too, back to the old index
    asyncio.run(_assert_index_names(settings, {"ix_measurements_product_sku_parameter_measured_at"}))


async def _assert_index_names(settings: Settings, expected: set[str]) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(
                lambda sync: {index["name"] for index in inspect(sync).get_indexes("measurements")}
            )
    finally:
        await engine.dispose()
    assert expected <= names
    assert "ix_measurements_series_points" not in names


@pytest.mark.postgres
def test_postgres_series_index_build_that_failed_half_way_is_redone(at_0011: AtRevision0011) -> None:
    """A concurrent build that failed leaves an invalid index under the new name: the next upgrade
    must replace it, not take it for done (an invalid index serves no query)."""
    import asyncpg

    dsn = at_0011.dsn

    async def leave_invalid_index() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            charge = await conn.fetchval(INSERT_CHARGE)
            for value in (1.0, 2.0):
                await conn.execute(INSERT_MEASUREMENT, charge, value)
            # Fails on the duplicate product, as a build interrupted half-way would: left invalid.
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "CREATE UNIQUE INDEX CONCURRENTLY ix_measurements_series_points ON measurements (product_sku)"
                )
        finally:
            await conn.close()

    async def index_state() -> tuple[bool, str]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            row = await conn.fetchrow(
                "SELECT indisvalid, pg_get_indexdef(indexrelid) AS definition FROM pg_index"
                " JOIN pg_class ON pg_class.oid = indexrelid WHERE relname = 'ix_measurements_series_points'"
            )
        finally:
            await conn.close()
        return row["indisvalid"], row["definition"]

    asyncio.run(leave_invalid_index())
    assert asyncio.run(index_state())[0] is False
    upgrade(at_0011.settings, "0012_measurement_series_points")
    valid, definition = asyncio.run(index_state())
    assert valid is True
    assert definition.endswith("(product_sku, parameter, measured_at, id, voided_at, charge_id, value)")
