"""The sweeper publishes what nobody published (lost tasks, dead workers, long retries) and gives up
on abandoned last attempts; what it publishes twice is sent once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.webhooks.delivery import WebhookDeliverer
from erp_api.webhooks.models import WebhookDelivery
from erp_api.webhooks.outbox import publish
from erp_api.webhooks.policy import DeliveryPolicy
from erp_api.webhooks.repository import WebhookRepository
from erp_api.webhooks.sweeper import ABANDONED_ERROR, WebhookSweeper
from tests.jobs.fakes import RecordingTaskClient
from tests.webhooks.conftest import QUICK_RETRIES
from tests.webhooks.receiver import Receiver, Reply

LONG_RETRIES = DeliveryPolicy(
    timeout_seconds=5.0,
    retry_delays_seconds=(600.0,),
    sweep_interval_seconds=30.0,
    requeue_after_seconds=60.0,
)


async def published(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as session:
        (delivery_id,) = await publish(session, "alert.opened", {"id": 1})
    return delivery_id


async def shift(
    sessions: async_sessionmaker[AsyncSession], delivery_id: int, **ago: timedelta | None
) -> None:
    """Move a delivery's timestamps into the past: ``next_attempt_at=timedelta(minutes=1)`` is a
    minute ago, None clears the column."""
    now = datetime.now(UTC)
    values = {name: None if delta is None else now - delta for name, delta in ago.items()}
    async with sessions.begin() as session:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values)
        )


async def row(sessions: async_sessionmaker[AsyncSession], delivery_id: int) -> WebhookDelivery:
    async with sessions() as session:
        return (await session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))).one()


async def test_a_delivery_whose_task_was_never_published_is_published_once_it_is_overdue(
    sessions: async_sessionmaker[AsyncSession], subscribed: dict[str, Any], tasks: RecordingTaskClient
) -> None:
    sweeper = WebhookSweeper(sessions, tasks, QUICK_RETRIES)
    delivery_id = await published(sessions)
    # Just published: its task is presumably on its way.
    assert (await sweeper.sweep()).published == 0
    # The publisher died after the commit: nothing came for longer than the requeue delay.
    await shift(sessions, delivery_id, enqueued_at=timedelta(seconds=61))
    report = await sweeper.sweep()
    assert (report.published, report.failed, report.broker_error) == (1, 0, None)
    assert tasks.webhook_deliveries == [(delivery_id, 0.0)]
    # Published again only if this task, too, goes unconsumed for the requeue delay.
    assert (await sweeper.sweep()).published == 0


async def test_a_retry_left_to_the_sweeper_is_published_when_it_is_due(
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    tasks: RecordingTaskClient,
    deliverer_with: Any,
) -> None:
    deliverer: WebhookDeliverer = deliverer_with(LONG_RETRIES)
    sweeper = WebhookSweeper(sessions, tasks, LONG_RETRIES)
    receiver.reply_with(Reply(500))
    delivery_id = await published(sessions)
    assert (await deliverer.deliver(delivery_id)).outcome == "retry"
    assert (await sweeper.sweep()).published == 0  # due in ten minutes
    await shift(sessions, delivery_id, next_attempt_at=timedelta(seconds=1))
    assert (await sweeper.sweep()).published == 1
    assert tasks.webhook_deliveries == [(delivery_id, 0.0)]
    assert (await deliverer.deliver(delivery_id)).outcome == "delivered"
    assert [request.webhook_id for request in receiver.requests] == [receiver.requests[0].webhook_id] * 2


async def test_an_attempt_abandoned_by_a_dead_worker_is_made_again_after_its_claim_expires(
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    subscribed: dict[str, Any],
    deliverer: WebhookDeliverer,
    tasks: RecordingTaskClient,
) -> None:
    sweeper = WebhookSweeper(sessions, tasks, QUICK_RETRIES)
    delivery_id = await published(sessions)
    now = datetime.now(UTC)
    async with sessions.begin() as session:  # a worker claims attempt 1, then dies
        claimed = await WebhookRepository(session).claim(
            delivery_id, now=now, lease_until=now + timedelta(minutes=1), max_attempts=3
        )
    assert claimed is not None and claimed.attempts == 1
    assert (await deliverer.deliver(delivery_id)).outcome == "skipped"  # still claimed
    assert (await sweeper.sweep()).published == 0
    await shift(sessions, delivery_id, next_attempt_at=timedelta(seconds=1))  # the claim expired
    assert (await sweeper.sweep()).published == 1
    report = await deliverer.deliver(delivery_id)
    assert (report.outcome, report.attempt) == ("delivered", 2)
    assert len(receiver.requests) == 1


async def test_an_abandoned_last_attempt_fails_the_delivery(
    sessions: async_sessionmaker[AsyncSession], subscribed: dict[str, Any], tasks: RecordingTaskClient
) -> None:
    sweeper = WebhookSweeper(sessions, tasks, QUICK_RETRIES)
    delivery_id = await published(sessions)
    async with sessions.begin() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                attempts=QUICK_RETRIES.max_attempts, next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    report = await sweeper.sweep()
    assert (report.published, report.failed) == (0, 1)
    stored = await row(sessions, delivery_id)
    assert (stored.status, stored.last_error, stored.next_attempt_at) == ("failed", ABANDONED_ERROR, None)


async def test_a_down_broker_leaves_the_delivery_for_a_later_sweep(
    sessions: async_sessionmaker[AsyncSession], subscribed: dict[str, Any], tasks: RecordingTaskClient
) -> None:
    sweeper = WebhookSweeper(sessions, tasks, QUICK_RETRIES)
    delivery_id = await published(sessions)
    await shift(sessions, delivery_id, enqueued_at=None)
    tasks.down = True
    report = await sweeper.sweep()
    assert report.published == 0
    assert report.broker_error is not None
    tasks.down = False
    assert (await sweeper.sweep()).published == 0  # not at every sweep: after the requeue delay
    await shift(sessions, delivery_id, enqueued_at=timedelta(seconds=61))
    assert (await sweeper.sweep()).published == 1
    assert tasks.webhook_deliveries == [(delivery_id, 0.0)]
