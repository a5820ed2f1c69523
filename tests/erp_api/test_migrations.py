"""Migrations upgrade and downgrade cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
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
