"""Fixtures of the webhook tests: a running receiver, subscriptions, a deliverer with a recording
task client, on the parametrized test databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.webhooks.delivery import WebhookDeliverer
from erp_api.webhooks.policy import DeliveryPolicy
from tests.jobs.fakes import RecordingTaskClient
from tests.webhooks.receiver import Receiver

ALL_EVENTS = ["alert.opened", "alert.changed", "charge.status_changed"]
# Retries due at once (a few ms), so that a test can make the next attempt without waiting.
QUICK_RETRIES = DeliveryPolicy(
    timeout_seconds=5.0,
    retry_delays_seconds=(0.001, 0.001),
    sweep_interval_seconds=30.0,
    requeue_after_seconds=60.0,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


async def subscribe(
    client: httpx.AsyncClient, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API_PREFIX}/webhooks", json={"url": url, "events": events or ALL_EVENTS, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def subscribed(client: httpx.AsyncClient, receiver: Receiver) -> dict[str, Any]:
    """A subscription of ``receiver`` to every event; the receiver knows its secret."""
    webhook = await subscribe(client, receiver.url)
    receiver.secret = webhook["secret"]
    return webhook


@pytest.fixture
def tasks() -> RecordingTaskClient:
    return RecordingTaskClient()


@pytest.fixture
async def deliverer_with(
    sessions: async_sessionmaker[AsyncSession], tasks: RecordingTaskClient
) -> AsyncIterator[Callable[[DeliveryPolicy], WebhookDeliverer]]:
    """``deliverer_with(policy)``: a deliverer on the test database, closed after the test."""
    made: list[WebhookDeliverer] = []

    def make(policy: DeliveryPolicy) -> WebhookDeliverer:
        deliverer = WebhookDeliverer(sessions, tasks, policy)
        made.append(deliverer)
        return deliverer

    yield make
    for deliverer in made:
        await deliverer.close()


@pytest.fixture
def deliverer(deliverer_with: Callable[[DeliveryPolicy], WebhookDeliverer]) -> WebhookDeliverer:
    return deliverer_with(QUICK_RETRIES)
