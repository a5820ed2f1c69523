"""Which database failures are a 503 ``service-unavailable`` (``database_unavailable``), met for real."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from erp_api.errors import DATABASE_RETRY_AFTER_SECONDS, database_unavailable
from tests.tcp_proxy import TcpProxy


async def failure_of(url: str, sql: str, **engine_options: object) -> BaseException:
    engine = create_async_engine(url, **engine_options)  # type: ignore[arg-type]
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError(f"{sql} did not fail")


@pytest.mark.postgres
async def test_a_statement_timeout_is_unavailable(postgres_url: str) -> None:
    exc = await failure_of(
        postgres_url,
        "SELECT pg_sleep(2)",
        connect_args={"server_settings": {"statement_timeout": "50"}},
    )
    unavailable = database_unavailable(exc)
    assert unavailable is not None
    assert unavailable.status == 503
    assert unavailable.headers == {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}


@pytest.mark.postgres
async def test_a_refused_connection_is_unavailable(postgres_url: str) -> None:
    upstream = make_url(postgres_url)
    with TcpProxy((upstream.host or "127.0.0.1", upstream.port or 5432)) as proxy:
        proxy.cut()  # refuses
        url = upstream.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        assert database_unavailable(await failure_of(url, "SELECT 1")) is not None


@pytest.mark.postgres
async def test_a_bad_statement_on_postgres_is_not_unavailable(postgres_url: str) -> None:
    assert database_unavailable(await failure_of(postgres_url, "SELECT * FROM no_such_table")) is None


async def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("CREATE TABLE t (x INTEGER)")
    lock.execute("BEGIN EXCLUSIVE")
    try:
        exc = await failure_of(
            f"sqlite+aiosqlite:///{path}", "INSERT INTO t VALUES (1)", connect_args={"timeout": 0.05}
        )
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert database_unavailable(exc) is not None


async def test_a_missing_sqlite_table_is_a_fault_not_unavailable(tmp_path: Path) -> None:
    exc = await failure_of(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite3", "SELECT * FROM no_such_table")
    assert database_unavailable(exc) is None
