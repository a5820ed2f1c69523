"""Statement durations and pool use, from SQLAlchemy's events on a real engine."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from erp_api.db import create_engine
from erp_api.observability.db_metrics import instrument_engine, statement_operation
from erp_api.settings import Settings
from tests.charges.helpers import create
from tests.observability.conftest import scrape, value


def in_use() -> float:
    return REGISTRY.get_sample_value("db_pool_connections_in_use") or 0.0


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "select"),
        ("  insert INTO charges VALUES (1)", "insert"),
        ("UPDATE charges SET version = 2", "update"),
        ("DELETE FROM charges", "delete"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "other"),
        ("PRAGMA journal_mode=WAL", "other"),
        ("", "other"),
    ],
)
def test_statements_are_labelled_by_a_bounded_operation(statement: str, operation: str) -> None:
    assert statement_operation(statement) == operation


async def idle_in_use(client: httpx.AsyncClient) -> float:
    """The in-use gauge at its lowest over a few scrapes, i.e. with the background loops idle."""
    seen = []
    for _ in range(8):
        seen.append(value(await scrape(client), "db_pool_connections_in_use"))
        await asyncio.sleep(0.03)
    return min(seen)


async def test_queries_of_real_requests_are_timed_by_operation(client: httpx.AsyncClient) -> None:
    idle_before = await idle_in_use(client)
    before = await scrape(client)
    await create(client, 1)
    await client.get("/api/v1/charges")
    after = await scrape(client)
    for operation in ("insert", "select"):
        name = "db_query_duration_seconds_count"
        assert value(after, name, operation=operation) > value(before, name, operation=operation)
    assert value(after, "db_query_duration_seconds_sum", operation="select") > value(
        before, "db_query_duration_seconds_sum", operation="select"
    )
    # Background loops (event log, rule checks) borrow connections briefly: compare the gauge when
    # they are idle, so only a connection the requests left checked out shows.
    assert await idle_in_use(client) == idle_before


async def test_pool_gauge_counts_checked_out_connections(settings: Settings) -> None:
    engine = create_engine(settings)
    instrument_engine(engine)
    try:
        idle = in_use()
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT 1"))
            await second.execute(text("SELECT 1"))
            busy = in_use()
        after = in_use()
    finally:
        await engine.dispose()
    assert (busy - idle, after - idle) == (2, 0)
    assert (REGISTRY.get_sample_value("db_pool_connections_max") or 0) >= 2
