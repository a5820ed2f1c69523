"""Engine and session factories, the declarative base every model derives from, and bulk inserts."""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    Executable,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from erp_api.settings import Settings
from erp_api.sqlite_writers import SqliteWriters

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine with the pool, timeouts and per-dialect connection setup taken from the settings."""
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if settings.is_sqlite:
        if settings.sqlite_path is not None:
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.db_connect_timeout_seconds}
        if settings.sqlite_path is None:
            kwargs["poolclass"] = NullPool
        else:
            # The pool of the settings, as on PostgreSQL. SQLAlchemy's default for a file is 5 + 10
            # overflow closed when they come back (in older 2.0 releases a NullPool: a connection per
            # session), and opening one costs a thread and four PRAGMAs (the load test's spike opened
            # 234). No pre-ping or recycling: a file does not drop a connection.
            kwargs.update(_pool(settings), poolclass=AsyncAdaptedQueuePool)
    else:
        kwargs.update(
            _pool(settings),
            pool_pre_ping=settings.db_pool_pre_ping,
            pool_recycle=settings.db_pool_recycle_seconds,
            connect_args={
                "timeout": settings.db_connect_timeout_seconds,
                "command_timeout": settings.request_timeout_seconds,
                "server_settings": {
                    "statement_timeout": str(settings.db_statement_timeout_ms),
                    "application_name": "erp-api",
                },
            },
        )
    engine = create_async_engine(settings.database_url, **kwargs)
    if settings.is_sqlite:
        _configure_sqlite(engine, busy_timeout_ms=int(settings.db_connect_timeout_seconds * 1000))
        SqliteWriters(wait_seconds=settings.db_connect_timeout_seconds).install(engine)
    return engine


def _pool(settings: Settings) -> dict[str, Any]:
    """The pool's size, overflow and checkout timeout, for every engine that pools."""
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    # WAL lets readers proceed during a write; synchronous=FULL keeps every acknowledged commit on disk.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def read_snapshot(session: AsyncSession) -> None:
    """Make every following statement of ``session`` read the same snapshot (call before the first).

    A read of several statements then never sees a commit in some of them only: PostgreSQL runs the
    transaction REPEATABLE READ; SQLite (whose driver begins transactions only before writes) gets an
    explicit BEGIN, and WAL keeps the snapshot of its first read until the session ends.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    else:
        await (await session.connection()).exec_driver_sql("BEGIN")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC timestamps in Python; PostgreSQL stores timestamptz, SQLite a sortable UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
# JSON documents: JSONB on PostgreSQL, JSON text on SQLite.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


# Rows per executemany where rows travel as parameters: ~12 parameters a row stays far below
# SQLite's bound-parameter limit.
INSERT_CHUNK: Final = 1_000


async def insert_rows(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_conflicts_on: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert ``rows`` (column name -> value, the same names in each) into ``model``'s table, in
    their order, in ``session``'s transaction; the ``returning`` columns of each row inserted. With
    ``skip_conflicts_on`` (a unique key's columns) a row that would duplicate a stored one is skipped.

    On PostgreSQL the rows travel as one JSON document that the statement unpacks: one serialisation
    in Python instead of SQLAlchemy converting every parameter of every row. For the ~240 alerts of
    a rule check it took 4 ms where an executemany took 10 and ORM objects 21. The values are stored
    as an executemany stores them (``tests/erp_api/test_db.py``): a JSON column keeps None as JSON
    null, a text too long for its column is refused, a naive time too. Elsewhere an executemany per
    ``INSERT_CHUNK`` rows.
    """
    if not rows:
        return []
    table = typing.cast(Table, model.__table__)
    if session.get_bind().dialect.name != "postgresql":
        sqlite_stmt = sqlite.insert(table)
        if skip_conflicts_on is not None:
            sqlite_stmt = sqlite_stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        returned: list[Row[Any]] = []
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = list(rows[start : start + INSERT_CHUNK])
            if returning:
                returning_stmt = sqlite_stmt.returning(*_columns(table, returning))
                returned.extend(await session.execute(returning_stmt, chunk))
            else:
                await session.execute(sqlite_stmt, chunk)
        return returned
    stmt = _json_insert(table, tuple(rows[0]), _optional_tuple(skip_conflicts_on), tuple(returning))
    try:
        document = orjson.dumps(rows, default=_json_value, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError as exc:  # the error of the value, as a parameter would raise it
        raise (exc.__cause__ or exc) from None
    result = await session.execute(stmt, {"rows": document.decode()})
    return list(result) if returning else []


@functools.lru_cache(maxsize=64)
def _json_insert(
    table: Table,
    names: tuple[str, ...],
    skip_conflicts_on: tuple[str, ...] | None,
    returning: tuple[str, ...],
) -> Executable:
    """INSERT INTO table (names) of the objects of the JSON array bound as ``rows``, in array order.
    Built once per shape (SQLAlchemy caches its compilation, not the building)."""
    elements = (
        func.jsonb_array_elements(cast(bindparam("rows", type_=Text), JSONB))
        .table_valued("value", with_ordinality="position")
        .render_derived(name="element")
    )
    stmt = postgresql.insert(table).from_select(
        names,
        select(*(_json_field(elements.c.value, table.c[name]) for name in names))
        .select_from(elements)
        .order_by(elements.c.position),
    )
    if skip_conflicts_on is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
    return stmt.returning(*_columns(table, returning)) if returning else stmt


def _optional_tuple(names: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(names)


def _columns(table: Table, names: Sequence[str]) -> list[ColumnElement[Any]]:
    return [table.c[name] for name in names]


def _json_field(value: ColumnElement[Any], column: Any) -> ColumnElement[Any]:
    """``column``'s value from a JSON object: JSON columns as they are (null stays JSON null); text as
    text, so that the insert's assignment refuses one too long as it would a parameter; anything
    else cast to the column's type."""
    if isinstance(column.type, JSON):
        return value.op("->")(column.name)
    text_value = value.op("->>")(column.name)
    if isinstance(column.type, String):
        return text_value
    return cast(text_value, column.type)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware one")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
