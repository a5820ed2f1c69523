"""Apps with security settings of a test's choosing, on a fresh SQLite copy, and clients for them."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.settings import Settings, load_settings
from tests.conftest import BASE_URL, TEST_ADMIN_KEY, bearer, sqlite_url

Serve = Callable[..., AbstractAsyncContextManager[Starlette]]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqlite_database(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "security.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return sqlite_url(path)


@pytest.fixture
def make_settings(sqlite_database: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with authentication on and the test admin key, plus the test's overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": sqlite_database,
            "cache_backend": "memory",
            "broker_url": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
            "auth_enabled": True,
            "bootstrap_admin_key": TEST_ADMIN_KEY,
            "access_log": False,
            **overrides,
        }
        return load_settings(**values)

    return make


@pytest.fixture
def serve(make_settings: Callable[..., Settings]) -> Serve:
    """``async with serve(**overrides) as app``: an app on those settings, its lifespan running."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Starlette]:
        app = create_app(make_settings(**overrides))
        async with app.router.lifespan_context(app):
            yield app

    return run


def http(app: Starlette, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """A client of ``app``; with ``key`` it sends it as a bearer token."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, **kwargs),
        base_url=BASE_URL,
        headers=bearer(key) if key else None,
    )


async def new_key(app: Starlette, role: str, name: str = "test key") -> str:
    from erp_api.security.roles import Role

    _row, key = await app.state.resources.security.keys.create(role=Role(role), name=name)
    secret: str = key
    return secret
