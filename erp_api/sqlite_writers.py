"""SQLite's writers of one process, queued in turn instead of polling for the database's write lock.

SQLite lets one transaction write at a time: a transaction takes the write lock at its first write
statement and keeps it to its commit or rollback. Another connection that wants to write meanwhile
is refused, and its driver retries in sleeps of 1, 2, 5, 10, ... up to 100 ms each, until the lock
is free or ``busy_timeout`` has passed. Under load that polling is what the writes wait for: in the
load test's spike on one worker (single and batched measurements, the rule check after each of their
commits, transitions and specs writing side by side) the process slept in 100 ms steps 350 times in
20 s; a batch of measurements took 0.6-1.3 s at p99 (0.2-0.5 s with the turns below).

``SqliteWriters`` gives the process's writers the lock in the order they ask for it, with no sleep:
before a transaction's first write statement (``INSERT``, ``UPDATE``, ``DELETE``, ``REPLACE``) its
connection waits its turn on an ``asyncio.Lock`` of the event loop, and gives the turn up when it
goes back to the pool, which a session's connection does as its transaction ends, once the commit or
rollback is done. SQLite takes its own lock at the same statement and drops it at the same commit,
so waiting here adds no wait SQLite would not impose, and no deadlock it would not have (a
connection that writes again after its commit, before it goes back to the pool, keeps its turn).
Other processes writing the same file (a Celery worker, the command line) still meet SQLite's lock
and its ``busy_timeout``; a turn not given within ``busy_timeout`` either fails as the lock does, with
the driver's "database is locked" (a request gets a 503 with ``Retry-After``).

Reads never wait here: in WAL mode they run beside the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, Final
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

_TURN: Final = "erp_sqlite_writer_turn"
"""Where a connection's pool record keeps the lock whose turn it holds."""
_WRITES: Final = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class SqliteWriters:
    """One writer at a time per event loop, in arrival order, for the engines it is installed on."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait = wait_seconds
        self._locks: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()

    def install(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(sync_engine.pool, "checkin", self._checked_in)

    def _before_execute(  # noqa: PLR0917 - SQLAlchemy's event signature
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: DefaultExecutionContext | None,
        executemany: bool,
    ) -> None:
        info = conn.info
        if _TURN in info or not _writes(statement, context):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous engine: SQLite's own lock alone
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        if not await_only(self._take_turn(lock)):
            # As the driver raises it when SQLite's own lock is not had within busy_timeout.
            raise OperationalError(statement, parameters, _database_locked())
        info[_TURN] = lock

    async def _take_turn(self, lock: asyncio.Lock) -> bool:
        try:
            async with asyncio.timeout(self._wait):
                await lock.acquire()
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry | None) -> None:
        if record is not None:
            lock: asyncio.Lock | None = record.info.pop(_TURN, None)
            if lock is not None:
                lock.release()


def _database_locked() -> sqlite3.OperationalError:
    """The driver's error for a lock not had within ``busy_timeout`` ("database is locked")."""
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    error.sqlite_errorname = "SQLITE_BUSY"
    return error


def _writes(statement: str, context: DefaultExecutionContext | None) -> bool:
    """Whether ``statement`` writes (a DML construct, or SQL text starting as one)."""
    if (
        context is not None
        and context.compiled is not None
        and not getattr(context.compiled, "isplaintext", False)
    ):
        # A construct: its DML flags tell, and a SELECT (most statements) costs no string work.
        return bool(context.isinsert or context.isupdate or context.isdelete)
    return statement.lstrip()[:7].upper().startswith(_WRITES)
