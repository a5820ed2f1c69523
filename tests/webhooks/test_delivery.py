"""Delivery to a real receiver that verifies every request with ``standardwebhooks``: signed, retried
with the same webhook-id until a 2xx, given up after the last attempt, logged attempt by attempt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.webhooks.delivery import MAX_RESPONSE_BYTES, WebhookDeliverer
from erp_api.webhooks.models import MAX_ERROR_LENGTH, WebhookDelivery
from erp_api.webhooks.outbox import publish
from erp_api.webhooks.policy import DeliveryPolicy
from testing.processes import free_port
from tests.jobs.fakes import RecordingTaskClient
from tests.webhooks.conftest import QUICK_RETRIES, subscribe
from tests.webhooks.receiver import Receiver, Reply

ALERT = {"id": 41, "charge_id": 7, "rule": "1", "status": "open", "measurement_ids": [3, 4]}


async def published(sessions: async_sessionmaker[AsyncSession], event: str = "alert.opened") -> int:
    async with sessions.begin() as session:
        (delivery_id,) = await publish(session, event, ALERT)
    return delivery_id


async def log_of(client: httpx.AsyncClient, webhook_id: int, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API_PREFIX}/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_due(sessions: async_sessionmaker[AsyncSession], delivery_id: int) -> None:
    """Bring the next attempt forward to now (instead of waiting out the backoff)."""
    async with sessions.begin() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(next_attempt_at=datetime.now(UTC))
        )


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id_until_the_receiver_accepts(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
    tasks: RecordingTaskClient,
) -> None:
    receiver.reply_with(Reply(500, b"database locked"))
    delivery_id = await published(sessions)
    started = int(time.time())
    first = await deliverer.deliver(delivery_id)
    await asyncio.sleep(0.01)  # the quick policy's retry is due after about a millisecond
    second = await deliverer.deliver(delivery_id)
    ended = int(time.time())

    assert (first.outcome, first.attempt, first.status_code) == ("retry", 1, 500)
    assert (second.outcome, second.attempt, second.status_code) == ("delivered", 2, 200)
    # The retry was published with its delay, since it is due before the next sweep.
    assert tasks.webhook_deliveries == [(delivery_id, first.retry_in_seconds)]
    one, two = receiver.requests
    for request in (one, two):
        assert request.verified == {
            "type": "alert.opened",
            "timestamp": request.verified["timestamp"],
            "data": ALERT,
        }
        assert started <= request.timestamp <= ended
        assert request.headers["content-type"] == "application/json"
        assert request.path == "/hooks/erp"
    assert one.webhook_id == two.webhook_id
    assert one.webhook_id.startswith("msg_")
    assert one.body == two.body  # the stored bytes, byte for byte

    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert logged["message_id"] == one.webhook_id
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == ("delivered", 2, 200)
    assert logged["event_type"] == "alert.opened"
    assert logged["delivered_at"] is not None
    assert logged["next_attempt_at"] is None
    assert logged["last_error"] is None
    assert [(entry["attempt"], entry["status_code"], entry["error"]) for entry in logged["history"]] == [
        (1, 500, "HTTP 500: database locked"),
        (2, 200, None),
    ]


async def test_the_delivery_fails_after_the_last_attempt_and_is_never_sent_again(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
) -> None:
    receiver.reply_with(*[Reply(503)] * 5)
    delivery_id = await published(sessions)
    outcomes = []
    for _ in range(QUICK_RETRIES.max_attempts):
        outcomes.append((await deliverer.deliver(delivery_id)).outcome)
        await asyncio.sleep(0.01)
    assert outcomes == ["retry", "retry", "failed"]
    assert (await deliverer.deliver(delivery_id)).outcome == "skipped"
    assert len(receiver.requests) == 3
    assert len({request.webhook_id for request in receiver.requests}) == 1
    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == ("failed", 3, 503)
    assert logged["next_attempt_at"] is None
    assert [entry["attempt"] for entry in logged["history"]] == [1, 2, 3]


async def test_an_attempt_that_is_not_due_yet_is_not_sent(
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer_with: Callable[[DeliveryPolicy], WebhookDeliverer],
    tasks: RecordingTaskClient,
) -> None:
    slow = DeliveryPolicy(
        timeout_seconds=5.0,
        retry_delays_seconds=(600.0,),
        sweep_interval_seconds=30.0,
        requeue_after_seconds=60.0,
    )
    deliverer = deliverer_with(slow)
    receiver.reply_with(Reply(500))
    delivery_id = await published(sessions)
    report = await deliverer.deliver(delivery_id)
    assert report.outcome == "retry"
    assert report.retry_in_seconds is not None and 480 <= report.retry_in_seconds <= 720
    # Ten minutes away: left to the sweeper, not held by the broker.
    assert tasks.webhook_deliveries == []
    assert (await deliverer.deliver(delivery_id)).outcome == "skipped"
    assert len(receiver.requests) == 1
    await make_due(sessions, delivery_id)
    assert (await deliverer.deliver(delivery_id)).outcome == "delivered"
    assert len(receiver.requests) == 2


async def test_two_workers_holding_the_same_task_send_the_attempt_once(
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer_with: Callable[[DeliveryPolicy], WebhookDeliverer],
) -> None:
    delivery_id = await published(sessions)
    reports = await asyncio.gather(*(deliverer_with(QUICK_RETRIES).deliver(delivery_id) for _ in range(4)))
    assert sorted(report.outcome for report in reports) == ["delivered", "skipped", "skipped", "skipped"]
    assert len(receiver.requests) == 1


async def test_redirects_are_not_followed_and_count_as_a_failed_attempt(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
) -> None:
    receiver.reply_with(Reply(307, headers={"location": receiver.url + "/elsewhere"}))
    delivery_id = await published(sessions)
    report = await deliverer.deliver(delivery_id)
    assert (report.outcome, report.status_code) == ("retry", 307)
    assert [request.path for request in receiver.requests] == ["/hooks/erp"]
    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert logged["last_error"] == f"HTTP 307: a redirect to {receiver.url}/elsewhere, not followed"


async def test_only_a_bounded_excerpt_of_a_failed_answer_is_read_and_logged(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
) -> None:
    receiver.reply_with(Reply(500, b"\x00boom\n" + b"x" * (4 * MAX_RESPONSE_BYTES)))
    await deliverer.deliver(await published(sessions))
    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert logged["last_error"].startswith("HTTP 500: boom x")
    assert len(logged["last_error"]) <= MAX_ERROR_LENGTH
    assert len(logged["history"][0]["error"]) <= MAX_ERROR_LENGTH


async def test_an_unreachable_receiver_is_logged_without_a_status_code(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], deliverer: WebhookDeliverer
) -> None:
    webhook = await subscribe(client, f"http://127.0.0.1:{free_port()}/nobody-listens")
    report = await deliverer.deliver(await published(sessions))
    assert (report.outcome, report.status_code) == ("retry", None)
    (logged,) = (await log_of(client, webhook["id"]))["items"]
    assert logged["last_status_code"] is None
    assert logged["last_error"].startswith("could not connect")


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer_with: Callable[[DeliveryPolicy], WebhookDeliverer],
) -> None:
    impatient = DeliveryPolicy(
        timeout_seconds=0.2,
        retry_delays_seconds=(0.001,),
        sweep_interval_seconds=30.0,
        requeue_after_seconds=60.0,
    )
    receiver.reply_with(Reply(200, delay_seconds=2.0))
    report = await deliverer_with(impatient).deliver(await published(sessions))
    assert (report.outcome, report.status_code) == ("retry", None)
    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert "timed out" in logged["last_error"] or "no answer within" in logged["last_error"]


async def test_pending_deliveries_of_a_disabled_webhook_fail_without_being_sent(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
) -> None:
    delivery_id = await published(sessions)
    assert (await client.delete(f"{API_PREFIX}/webhooks/{subscribed['id']}")).status_code == 204
    report = await deliverer.deliver(delivery_id)
    assert report.outcome == "failed"
    assert receiver.requests == []
    (logged,) = (await log_of(client, subscribed["id"]))["items"]
    assert (logged["status"], logged["last_error"]) == ("failed", "the subscription was disabled; not sent")
    async with sessions.begin() as session:
        assert await publish(session, "alert.opened", ALERT) == []


async def test_the_delivery_log_pages_newest_first_and_filters_by_status(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
) -> None:
    ids = [
        await published(sessions, event)
        for event in ("alert.opened", "alert.changed", "charge.status_changed")
    ]
    await deliverer.deliver(ids[0])
    first = await log_of(client, subscribed["id"], limit=2)
    second = await log_of(client, subscribed["id"], limit=2, cursor=first["next_cursor"])
    assert [item["id"] for item in first["items"]] == [ids[2], ids[1]]
    assert [item["id"] for item in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
    assert [item["event_type"] for item in first["items"]] == ["charge.status_changed", "alert.changed"]
    delivered = await log_of(client, subscribed["id"], status="delivered")
    assert [item["id"] for item in delivered["items"]] == [ids[0]]
    pending = (await log_of(client, subscribed["id"], status="pending"))["items"]
    assert all(item["attempts"] == 0 and item["history"] == [] for item in pending)
    bad = await client.get(f"{API_PREFIX}/webhooks/{subscribed['id']}/deliveries", params={"cursor": "nope"})
    assert bad.status_code == 422
    assert orjson.loads(receiver.requests[0].body)["type"] == "alert.opened"
