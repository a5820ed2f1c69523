"""Database metrics from SQLAlchemy's own events: statement durations and pool connections in use.

The listeners sit on the sync engine under the async one, where the driver call happens; each one
does a clock read or a gauge step, nothing more.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from erp_api.observability.metrics import DB_POOL_CAPACITY, DB_POOL_IN_USE, DB_QUERY_DURATION

_STARTED = "erp_query_started"
_OPERATIONS = ("select", "insert", "update", "delete")
_by_operation: dict[str, Histogram] = {op: DB_QUERY_DURATION.labels(op) for op in (*_OPERATIONS, "other")}


def statement_operation(statement: str) -> str:
    """``select``, ``insert``, ``update``, ``delete`` or ``other``: a bounded label for a statement."""
    words = statement[:16].split(None, 1)
    word = words[0].lower() if words else ""
    return word if word in _OPERATIONS else "other"


def _before_cursor_execute(conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
    # A stack, not one slot: a listener may itself execute a statement on the same connection.
    conn.info.setdefault(_STARTED, []).append(perf_counter())


def _after_cursor_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    started = conn.info.get(_STARTED)
    if started:
        _by_operation[statement_operation(statement)].observe(perf_counter() - started.pop())


def _checked_out(*_args: Any) -> None:
    DB_POOL_IN_USE.inc()


def _checked_in(*_args: Any) -> None:
    DB_POOL_IN_USE.dec()


def instrument_engine(engine: AsyncEngine) -> None:
    """Time every statement ``engine`` runs and count the pool connections it has checked out."""
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(sync_engine, "after_cursor_execute", _after_cursor_execute)
    event.listen(sync_engine, "checkout", _checked_out)
    event.listen(sync_engine, "checkin", _checked_in)
    pool = sync_engine.pool
    size = getattr(pool, "size", None)
    # QueuePool keeps its overflow limit private; -1 means unlimited, and NullPool has no bound at all.
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size) and overflow >= 0:
        DB_POOL_CAPACITY.set(size() + overflow)
