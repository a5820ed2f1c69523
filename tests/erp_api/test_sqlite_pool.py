"""A SQLite file's engine keeps the pool the settings give it (``ERP_DB_POOL_SIZE``), as PostgreSQL's.

SQLAlchemy's own default for a file (5 connections, 10 more that are closed when they come back)
made a busy process open a connection, with its thread and its PRAGMAs, for most requests above
five at a time: 234 in the load test's spike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from erp_api.db import create_engine
from erp_api.settings import load_settings
from tests.conftest import sqlite_url

POOL_SIZE = 8


async def test_connections_up_to_the_pool_size_are_kept_between_bursts(tmp_path: Path) -> None:
    engine = create_engine(
        load_settings(database_url=sqlite_url(tmp_path / "pool.sqlite3"), db_pool_size=POOL_SIZE)
    )
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def _count(_dbapi_connection: Any, _record: Any) -> None:
        nonlocal opened
        opened += 1

    all_in = asyncio.Barrier(POOL_SIZE)  # cyclic: each burst passes it again

    async def reader() -> None:
        async with engine.connect() as connection:
            await all_in.wait()  # every connection checked out at once
            await connection.execute(text("SELECT 1"))

    try:
        for _burst in range(3):
            await asyncio.gather(*(reader() for _ in range(POOL_SIZE)))
        assert opened == POOL_SIZE
        assert engine.pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
