"""The quality tables the migrations create are the tables the models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from starlette.applications import Starlette

from erp_api.db import Base
from erp_api.models import load_all

QUALITY_TABLES = {"quality_specs", "measurements", "quality_series_stats", "quality_hourly_stats"}


def _table_of(diff: Any) -> str | None:
    """The table a schema difference concerns (differences come as tuples, or lists of tuples)."""
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, str) and part in QUALITY_TABLES:
            return part
        if name in QUALITY_TABLES:
            return str(name)
    return None


async def test_migrated_quality_tables_match_the_models(app: Starlette) -> None:
    load_all()
    engine = app.state.resources.engine
    async with engine.connect() as connection:
        diffs = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    assert [diff for diff in diffs if _table_of(diff) in QUALITY_TABLES] == []
