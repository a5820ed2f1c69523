"""Fixtures for the observability tests: scraping /metrics, and apps built with extra settings."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.settings import load_settings
from tests import services
from tests.conftest import sqlite_url

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def parse_samples(text: str) -> Samples:
    """Every sample of a text exposition, keyed by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_samples(response.text)


@pytest.fixture
def build_app(sqlite_template: Path, tmp_path: Path) -> Callable[..., Starlette]:
    """``build_app(routes=[...], **settings)``: an app on a fresh migrated SQLite copy, not started."""
    built = itertools.count()

    def build(routes: list[Any] | None = None, **overrides: Any) -> Starlette:
        path = tmp_path / f"erp-{next(built)}.sqlite3"
        shutil.copyfile(sqlite_template, path)
        settings = {
            "database_url": sqlite_url(path),
            "cache_backend": "memory",
            "broker_url": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
            **overrides,
        }
        app = create_app(load_settings(**settings))
        app.router.routes.extend(routes or [])
        return app

    return build


@pytest.fixture
def build_client(build_app: Callable[..., Starlette]) -> ClientFactory:
    """A started app from ``build_app(...)`` and a client for it.

    Unhandled exceptions come back as the 500 the server would send instead of being raised.
    """

    @asynccontextmanager
    async def build(routes: list[Any] | None = None, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = build_app(routes, **overrides)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield client

    return build


@pytest.fixture
def redis_broker() -> Iterator[tuple[str, str]]:
    """(URL, key prefix) of a Celery broker on the shared Redis; its keys are deleted afterwards."""
    with services.own_redis_prefix("erp_observability_test") as url_and_prefix:
        yield url_and_prefix
