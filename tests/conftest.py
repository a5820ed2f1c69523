"""Fixtures shared by the whole suite: migrated databases (SQLite and PostgreSQL), settings, app, clients.

``client`` is authenticated with the bootstrap admin key ``TEST_ADMIN_KEY``; ``client_as(role)``
gives a client holding a new key of any role.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.migrate import upgrade
from erp_api.security.roles import Role
from erp_api.settings import Settings, load_settings
from tests import services

pytest_plugins = ["tests.database", "tests.security.fixtures"]

TEST_ADMIN_KEY = "erp_test-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
BASE_URL = "http://testserver"

TABLES_IN_DELETE_ORDER_SQL = """
SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (cheaper than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "erp.sqlite3"
    upgrade(load_settings(database_url=sqlite_url(path)))
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this session's own, dropped at the end."""
    name, url = services.create_postgres_database()
    try:
        upgrade(load_settings(database_url=url))
        yield url
    finally:
        services.drop_postgres_database(name)


async def _truncate_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
    try:
        tables = [row["tablename"] for row in await conn.fetch(TABLES_IN_DELETE_ORDER_SQL)]
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: a fresh SQLite file, or the session's PostgreSQL database truncated."""
    if request.param == "sqlite":
        path = tmp_path / "erp.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return sqlite_url(path)
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate_postgres(url))
    return url


async def eventually(condition: Callable[[], bool], *, within: float = 15.0) -> None:
    """Wait until ``condition()`` holds; ``within`` is a hang guard, not a speed requirement."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.002)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(autouse=True)
def _auth_off_for_apps_built_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps a test builds from the environment alone (its own ``load_settings()``, a server process)
    serve without authentication unless the test turns it on; the ``settings`` fixture and the
    security tests always turn it on."""
    monkeypatch.setenv("ERP_AUTH_ENABLED", "false")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        cache_backend="memory",
        broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        auth_enabled=True,
        bootstrap_admin_key=TEST_ADMIN_KEY,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` holding the bootstrap admin key."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer(TEST_ADMIN_KEY)
    ) as http:
        yield http


@pytest.fixture
async def client_as(app: Starlette) -> AsyncIterator[Callable[[str], Awaitable[httpx.AsyncClient]]]:
    """``await client_as("operator")``: a client of ``app`` holding a new key of that role."""
    opened: list[httpx.AsyncClient] = []

    async def make(role: str) -> httpx.AsyncClient:
        _row, key = await app.state.resources.security.keys.create(role=Role(role), name=f"test {role}")
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=bearer(key)
        )
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()
