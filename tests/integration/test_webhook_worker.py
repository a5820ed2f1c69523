"""Webhooks delivered by a real Celery worker process to a real receiver that verifies each request
with ``standardwebhooks``: the first attempt fails, the worker publishes the retry itself, the
second attempt is accepted; on SQLite and PostgreSQL, with the embedded broker (no Redis needed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from erp_api.app import create_app
from erp_api.migrate import upgrade
from erp_api.settings import Settings, load_settings
from erp_api.webhooks.outbox import dispatch, publish
from testing.processes import running_worker, worker_command
from tests import services
from tests.webhooks.receiver import Receiver, Reply

pytestmark = pytest.mark.slow

RETRY_DELAYS = "[0.2, 0.2]"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def worker_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database shared by the test and its worker."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
        return
    name, url = services.create_postgres_database()
    try:
        yield url
    finally:
        services.drop_postgres_database(name)


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, application.state.resources


async def delivered(client: httpx.AsyncClient, webhook_id: int, within: float = 30.0) -> dict[str, Any]:
    try:
        async with asyncio.timeout(within):
            while True:
                page = (await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries")).json()
                if page["items"] and page["items"][0]["status"] != "pending":
                    item: dict[str, Any] = page["items"][0]
                    return item
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"no delivery finished within {within} s") from None


async def test_a_worker_retries_a_failed_delivery_with_the_same_webhook_id_until_it_is_accepted(
    tmp_path: Path, worker_database: str
) -> None:
    settings = load_settings(
        database_url=worker_database,
        broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        cache_backend="memory",
        webhook_retry_delays_seconds=[0.2, 0.2],
    )
    env = {
        "ERP_DATABASE_URL": settings.database_url,
        "ERP_BROKER_URL": settings.broker_url,
        "ERP_WEBHOOK_RETRY_DELAYS_SECONDS": RETRY_DELAYS,
    }
    await asyncio.to_thread(upgrade, settings)
    with Receiver().running() as receiver:
        receiver.reply_with(Reply(500, b"not yet"))
        async with api(settings) as (client, ctx):
            response = await client.post(
                "/api/v1/webhooks", json={"url": receiver.url, "events": ["alert.opened"]}
            )
            webhook = response.json()
            receiver.secret = webhook["secret"]
            # As the alert code does: publish in the transaction of the change, dispatch after it.
            async with ctx.sessions.begin() as session:
                ids = await publish(session, "alert.opened", {"alert_id": 5, "charge_id": 9})
            await dispatch(ctx.tasks, ids)
            with running_worker(env, tmp_path / "worker.log", command=worker_command("solo")) as worker:
                logged = await delivered(client, webhook["id"])
    assert (logged["status"], logged["attempts"]) == ("delivered", 2), logged
    assert [(entry["attempt"], entry["status_code"]) for entry in logged["history"]] == [(1, 500), (2, 200)]
    first, second = receiver.requests
    assert first.webhook_id == second.webhook_id == logged["message_id"]
    for request in (first, second):
        assert request.verified["data"] == {"alert_id": 5, "charge_id": 9}
    assert "Traceback" not in worker.log()
