"""Exports through a real server process, every middleware (gzip included) in the way: the first
line arrives while the database is still blocked, a client that leaves stops the export, and one
past the row cap ends as an incomplete transfer."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import insert

from erp_api.charges.models import Charge
from erp_api.db import create_engine, create_session_factory
from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import Server, running_server
from tests import services
from tests.exports.helpers import EXPORTS, T0, store_charges

pytestmark = pytest.mark.slow

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def migrated_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
        upgrade(load_settings(database_url=url))
        yield url
        return
    services.require_postgres()
    name, url = services.create_postgres_database()
    try:
        upgrade(load_settings(database_url=url))
        yield url
    finally:
        services.drop_postgres_database(name)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of the test's own: SQLite, then PostgreSQL."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgres_database(tmp_path: Path) -> Iterator[str]:
    with migrated_database("postgres", tmp_path) as url:
        yield url


@contextmanager
def export_server(url: str, tmp_path: Path, **settings: Any) -> Iterator[Server]:
    env = {
        "ERP_DATABASE_URL": url,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        **{f"ERP_{name.upper()}": str(value) for name, value in settings.items()},
    }
    with running_server(env) as server:
        yield server


async def seed_charges(url: str, count: int) -> None:
    engine = create_engine(load_settings(database_url=url))
    try:
        rows = [
            {
                "charge_number": f"CH-{serial:08d}",
                "product_sku": "PUMP-A",
                "quantity": "125.5",
                "unit": "pcs",
                "line": "Linie Süd",
                "status": "planned",
                "produced_at": T0 + timedelta(seconds=serial),
                "created_at": T0,
                "updated_at": T0,
                "version": 1,
            }
            for serial in range(count)
        ]
        async with engine.begin() as connection:
            for start in range(0, count, 5_000):
                await connection.execute(insert(Charge), rows[start : start + 5_000])
    finally:
        await engine.dispose()


class ChargesTableLock:
    """ACCESS EXCLUSIVE on charges, held from ``take()`` to ``release()``: every query of an export
    waits for it."""

    def __init__(self, url: str) -> None:
        self._url = url.replace("postgresql+asyncpg://", "postgresql://")

    async def take(self) -> None:
        self._conn = await asyncpg.connect(self._url, timeout=5)
        await self._conn.execute("BEGIN; LOCK TABLE charges IN ACCESS EXCLUSIVE MODE")

    async def release(self) -> None:
        if not self._conn.is_closed():
            await self._conn.execute("ROLLBACK")
            await self._conn.close()


@pytest.mark.postgres
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_the_header_row_arrives_while_the_first_query_still_waits(
    postgres_database: str, tmp_path: Path, encoding: str
) -> None:
    engine = create_engine(load_settings(database_url=postgres_database))
    try:
        await store_charges(create_session_factory(engine), {"line": 'Linie "Süd", 3'}, {}, {})
    finally:
        await engine.dispose()
    lock = ChargesTableLock(postgres_database)
    with export_server(postgres_database, tmp_path, export_chunk_rows=2) as server:
        await lock.take()
        try:
            async with (
                httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
                client.stream(
                    "GET", f"{EXPORTS}/charges.csv", headers={"Accept-Encoding": encoding}
                ) as response,
            ):
                assert response.status_code == 200
                assert response.headers.get("content-encoding", "identity") == encoding
                lines = response.aiter_lines()
                # No query can have returned yet: a middleware that buffered would time out here.
                header = await anext(lines)
                assert header.removeprefix("\ufeff").startswith("id,charge_number,")
                await lock.release()
                rest = [line async for line in lines]
        finally:
            await lock.release()
    records = [record for record in csv.reader(io.StringIO("\r\n".join(rest))) if record]
    assert [record[5] for record in records] == ['Linie "Süd", 3', "L1", "L1"]


async def test_a_client_that_leaves_stops_the_export(database: str, tmp_path: Path) -> None:
    rows = 40_000
    await seed_charges(database, rows)
    with export_server(database, tmp_path, export_chunk_rows=20) as server:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", f"{EXPORTS}/charges.ndjson") as response,
        ):
            assert response.status_code == 200
            assert (await anext(response.aiter_lines())).startswith('{"id":1,')
        ended = _wait_for_log(server, "export_ended")
    assert '"outcome":"disconnected"' in ended, ended
    sent = re.search(r'"rows":(\d+)', ended)
    assert sent is not None and int(sent.group(1)) < rows


async def test_an_export_past_the_row_cap_ends_as_an_incomplete_transfer(
    database: str, tmp_path: Path
) -> None:
    await seed_charges(database, 5)
    with export_server(database, tmp_path, export_chunk_rows=2, export_max_rows=3) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            for encoding in ("identity", "gzip"):
                received: list[str] = []
                request = client.stream(
                    "GET",
                    f"{EXPORTS}/charges.csv",
                    params={"bom": "false"},
                    headers={"Accept-Encoding": encoding},
                )
                with pytest.raises(httpx.RemoteProtocolError):
                    async with request as response:
                        async for line in response.aiter_lines():
                            received.append(line)
                assert received[0].startswith("id,")
                numbers = [line.split(",")[1] for line in received[1:] if line]
                assert numbers == ["CH-00000000", "CH-00000001", "CH-00000002"], encoding
            # An export of as many rows as the cap allows is complete.
            params = {"produced_to": (T0 + timedelta(seconds=2)).isoformat()}
            within = await client.get(f"{EXPORTS}/charges.csv", params=params)
            assert within.status_code == 200
            assert within.text.count("\r\n") == 4


def _wait_for_log(server: Server, event: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.process.log().splitlines():
            if f'"event":"{event}"' in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no {event} in the server log:\n{server.process.log()[-3000:]}")
