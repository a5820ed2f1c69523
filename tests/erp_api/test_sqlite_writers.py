"""``SqliteWriters``: a process's SQLite writers take turns instead of polling for the write lock.

Each test runs on an engine whose driver does not wait for SQLite's lock at all (``busy_timeout``
0): a writer that met another's lock would fail at once with "database is locked". Without the
turns, the concurrent writers below fail that way (checked).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Executable, Integer, MetaData, Table, event, insert, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from erp_api.db import create_engine, create_session_factory
from erp_api.errors import database_unavailable
from erp_api.settings import load_settings
from erp_api.sqlite_writers import SqliteWriters
from tests.conftest import eventually, sqlite_url

ROWS = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))
WRITERS = 12
HOLD_SECONDS = 0.02


async def lock_free_engine(path: Path, wait_seconds: float = 5.0) -> AsyncEngine:
    engine = create_engine(
        load_settings(database_url=sqlite_url(path), db_connect_timeout_seconds=wait_seconds)
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:  # after the engine's own setup
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.create_all)
    return engine


@asynccontextmanager
async def turn_held(sessions: async_sessionmaker[AsyncSession], statement: Executable) -> AsyncIterator[None]:
    """Inside: another task's transaction has run ``statement`` (a write) and is left open."""
    writing, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with sessions.begin() as session:
            await session.execute(statement)
            writing.set()
            await release.wait()

    task = asyncio.create_task(holder())
    try:
        await writing.wait()
        yield
    finally:
        release.set()
        await task


def waiting_for_its_turn(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is suspended in the queue for the turn (its chain of awaits reaches it)."""
    awaited: Any = task.get_coro()
    while awaited is not None:
        if getattr(awaited, "cr_code", None) is SqliteWriters._take_turn.__code__:
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await lock_free_engine(tmp_path / "writers.sqlite3")
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def test_concurrent_write_transactions_all_commit(sessions: async_sessionmaker[AsyncSession]) -> None:
    async def writer(index: int) -> None:
        async with sessions.begin() as session:
            await session.execute(insert(ROWS).values(n=index))  # a DML construct: takes the turn
            await asyncio.sleep(HOLD_SECONDS)  # the write lock held across other tasks' work
            await session.execute(text("UPDATE rows SET n = n + 1000 WHERE n = :n"), {"n": index})

    await asyncio.gather(*(writer(index) for index in range(WRITERS)))

    async with sessions() as session:
        stored = sorted((await session.scalars(select(ROWS.c.n))).all())
    assert stored == [index + 1000 for index in range(WRITERS)]


async def test_writers_get_their_turns_in_the_order_they_asked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    turns: list[int] = []

    async def writer(index: int) -> None:
        async with sessions.begin() as session:
            await session.execute(insert(ROWS).values(n=index))
            turns.append(index)

    tasks = []
    async with turn_held(sessions, insert(ROWS).values(n=-1)):
        for index in range(WRITERS):  # each one queued (on its connection) before the next starts
            tasks.append(asyncio.create_task(writer(index)))
            # Seen in the queue, not assumed after a fixed sleep (a slow connection was overtaken).
            await eventually(lambda: waiting_for_its_turn(tasks[-1]), within=5)
        await asyncio.sleep(HOLD_SECONDS)  # the queue left standing: nobody writes out of turn
        assert turns == []
    await asyncio.gather(*tasks)
    assert turns == list(range(WRITERS))


async def test_sql_text_that_writes_takes_a_turn_too(sessions: async_sessionmaker[AsyncSession]) -> None:
    async def writer(index: int) -> None:
        async with sessions.begin() as session:
            await session.execute(text("  insert into rows (n) values (:n)"), {"n": index})
            await asyncio.sleep(HOLD_SECONDS)
            await session.execute(text("DELETE FROM rows WHERE n = :n"), {"n": index})

    await asyncio.gather(*(writer(index) for index in range(WRITERS)))

    async with sessions() as session:
        assert (await session.scalars(select(ROWS.c.n))).all() == []


async def test_reads_do_not_wait_for_the_writer(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(ROWS).values(n=1))
    # WAL: the committed row, at once, while the update is open.
    async with turn_held(sessions, update(ROWS).values(n=2)), asyncio.timeout(5), sessions() as session:
        assert (await session.scalars(select(ROWS.c.n))).all() == [1]
    async with sessions() as session:
        assert (await session.scalars(select(ROWS.c.n))).all() == [2]


async def test_a_rolled_back_writer_gives_its_turn_to_the_next(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ZeroDivisionError):
        async with sessions.begin() as session:
            await session.execute(insert(ROWS).values(n=1))
            _ = 1 / 0

    async with asyncio.timeout(5), sessions.begin() as session:
        await session.execute(insert(ROWS).values(n=2))
    async with sessions() as session:
        assert (await session.scalars(select(ROWS.c.n))).all() == [2]


async def test_a_writer_that_writes_again_after_its_commit_keeps_its_turn(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(ROWS).values(n=1))
        await connection.commit()
        await connection.execute(insert(ROWS).values(n=2))  # the same connection: no second turn
        await connection.commit()
    async with asyncio.timeout(5), engine.begin() as connection:  # given back with the connection
        await connection.execute(insert(ROWS).values(n=3))
        assert (await connection.scalars(select(ROWS.c.n))).all() == [1, 2, 3]


async def test_a_turn_not_given_in_time_is_a_503(tmp_path: Path) -> None:
    engine = await lock_free_engine(tmp_path / "slow.sqlite3", wait_seconds=0.2)
    sessions = create_session_factory(engine)
    try:
        async with turn_held(sessions, insert(ROWS).values(n=1)):
            with pytest.raises(OperationalError) as raised:
                async with sessions.begin() as session:
                    await session.execute(insert(ROWS).returning(ROWS.c.id), [{"n": 2}, {"n": 3}])
        unavailable = database_unavailable(raised.value)
        assert unavailable is not None and unavailable.status == 503
        async with asyncio.timeout(5), sessions.begin() as session:  # the queue still works
            await session.execute(insert(ROWS).values(n=3))
    finally:
        await engine.dispose()
