"""Publishing: one pending delivery per active subscriber, in the caller's transaction; dispatching
after the commit, never failing the caller when the broker is down."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.webhooks.events import EVENT_TYPES
from erp_api.webhooks.models import WebhookDelivery
from erp_api.webhooks.outbox import dispatch, publish, publish_many
from tests.jobs.fakes import RecordingTaskClient
from tests.webhooks.conftest import subscribe

URL = "https://hooks.example.com/erp"


async def deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list((await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all())


async def test_an_event_is_queued_once_for_each_active_subscriber_to_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    alerts = await subscribe(client, URL, ["alert.opened", "alert.changed"])
    charges = await subscribe(client, URL, ["charge.status_changed"])
    everything = await subscribe(client, URL)
    disabled = await subscribe(client, URL, ["alert.opened"])
    await client.delete(f"/api/v1/webhooks/{disabled['id']}")
    async with sessions.begin() as session:
        ids = await publish(session, "alert.opened", {"id": 1})
    rows = await deliveries(sessions)
    assert [row.id for row in rows] == ids
    assert [row.subscription_id for row in rows] == [alerts["id"], everything["id"]]
    assert len({row.message_id for row in rows}) == 2
    assert all(row.status == "pending" and row.attempts == 0 for row in rows)
    async with sessions.begin() as session:
        charge_ids = await publish(session, "charge.status_changed", {"id": 2})
    rows = (await deliveries(sessions))[2:]
    assert [row.id for row in rows] == charge_ids
    assert [row.subscription_id for row in rows] == [charges["id"], everything["id"]]


async def test_several_events_are_queued_at_once_each_for_every_subscriber_in_turn(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await subscribe(client, URL, ["alert.opened"])
    second = await subscribe(client, URL)
    async with sessions.begin() as session:
        ids = await publish_many(session, "alert.opened", [{"id": 1}, {"id": 2}, {"id": 3}])
        assert await publish_many(session, "alert.opened", []) == []
    rows = await deliveries(sessions)
    assert [row.id for row in rows] == ids
    assert [(orjson.loads(row.payload)["data"]["id"], row.subscription_id) for row in rows] == [
        (alert_id, subscription["id"]) for alert_id in (1, 2, 3) for subscription in (first, second)
    ]
    assert len({row.message_id for row in rows}) == 6
    assert all(row.status == "pending" and row.event_type == "alert.opened" for row in rows)


async def test_an_event_whose_transaction_rolls_back_is_never_delivered(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, URL)
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            assert len(await publish(session, "alert.opened", {"id": 1})) == 1
            raise RuntimeError("the change failed after publishing")
    assert await deliveries(sessions) == []


async def test_without_subscribers_nothing_is_queued(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        assert await publish(session, "alert.opened", {"id": 1}) == []
    assert await deliveries(sessions) == []


async def test_an_unknown_event_type_is_a_programming_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        with pytest.raises(ValueError):
            await publish(session, "alert.deleted", {"id": 1})
    assert set(EVENT_TYPES) == {"alert.opened", "alert.changed", "charge.status_changed"}


async def test_the_body_is_the_standard_webhooks_envelope_stored_as_sent(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await subscribe(client, URL)
    at = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    payload: dict[str, Any] = {"charge_id": 7, "quantity": Decimal("12.500"), "at": at, "note": "ü"}
    async with sessions.begin() as session:
        await publish(session, "charge.status_changed", payload)
    (row,) = await deliveries(sessions)
    body = orjson.loads(row.payload)
    assert body["type"] == "charge.status_changed"
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert body["data"] == {
        "charge_id": 7,
        "quantity": "12.500",
        "at": "2026-03-01T06:30:00+00:00",
        "note": "ü",
    }
    assert row.event_type == "charge.status_changed"


async def test_dispatch_publishes_a_task_per_delivery_and_survives_a_down_broker() -> None:
    tasks = RecordingTaskClient()
    await dispatch(tasks, [3, 4])
    assert tasks.webhook_deliveries == [(3, 0.0), (4, 0.0)]
    tasks.down = True
    await dispatch(tasks, [5])  # left to the sweeper, no exception for the caller
    assert tasks.webhook_deliveries == [(3, 0.0), (4, 0.0)]
