"""``charge.status_changed``: every transition made through the charge service is published in its
transaction and its delivery task is published after the commit; a refused one publishes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.webhooks.delivery import WebhookDeliverer
from erp_api.webhooks.models import WebhookDelivery
from tests.charges.helpers import create
from tests.webhooks.conftest import subscribe
from tests.webhooks.receiver import Receiver


async def deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list((await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all())


async def webhook_queue(client: httpx.AsyncClient) -> int:
    queues: dict[str, int] = (await client.get(f"{API_PREFIX}/jobs/status")).json()["queues"]
    return queues["webhooks"]


async def test_a_transition_is_delivered_as_a_signed_charge_status_changed_event(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    deliverer: WebhookDeliverer,
) -> None:
    webhook = await subscribe(client, receiver.url, ["charge.status_changed"])
    receiver.secret = webhook["secret"]
    charge = await create(client, 1)
    response = await client.post(
        f"{API_PREFIX}/charges/{charge['id']}/transitions", json={"to": "in_production", "reason": "shift A"}
    )
    assert response.status_code == 200, response.text
    (delivery,) = await deliveries(sessions)
    assert await webhook_queue(client) == 1  # dispatched after the commit
    assert (await deliverer.deliver(delivery.id)).outcome == "delivered"
    (request,) = receiver.requests
    event: dict[str, Any] = request.verified
    assert event["type"] == "charge.status_changed"
    data = event["data"]
    assert {
        key: data[key] for key in ("charge_id", "charge_number", "product_sku", "from", "to", "reason")
    } == {
        "charge_id": charge["id"],
        "charge_number": charge["charge_number"],
        "product_sku": charge["product_sku"],
        "from": "planned",
        "to": "in_production",
        "reason": "shift A",
    }
    assert data["by"]["role"] == "admin"
    assert datetime.fromisoformat(data["changed_at"]) == datetime.fromisoformat(response.json()["updated_at"])


async def test_a_refused_transition_publishes_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "https://hooks.example.com/erp", ["charge.status_changed"])
    charge = await create(client, 1)
    response = await client.post(f"{API_PREFIX}/charges/{charge['id']}/transitions", json={"to": "released"})
    assert response.status_code == 409
    assert await deliveries(sessions) == []
    assert await webhook_queue(client) == 0


async def test_subscribers_to_other_events_get_no_charge_events(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, "https://hooks.example.com/erp", ["alert.opened"])
    charge = await create(client, 1)
    response = await client.post(
        f"{API_PREFIX}/charges/{charge['id']}/transitions", json={"to": "in_production"}
    )
    assert response.status_code == 200
    assert await deliveries(sessions) == []
