"""Publishing events to webhooks: an outbox written in the caller's transaction.

``publish`` inserts one pending delivery per active subscription to the event, in the session of
the transaction that makes the change the event reports, so the event exists if and only if the
change committed. After the commit the caller hands the returned ids to ``dispatch``, which
publishes one delivery task each. A task lost on the way (the process died after the commit, the
broker was down) is published again by the sweeper (``sweeper.py``): delivery is at least once.

The body is Standard Webhooks' envelope, ``{"type": ..., "timestamp": ..., "data": payload}``,
serialized once here and stored: every attempt sends (and signs) exactly these bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import utcnow
from erp_api.jobs.dispatch import BrokerUnavailable, TaskClient
from erp_api.webhooks.events import EventType
from erp_api.webhooks.repository import WebhookRepository
from erp_api.webhooks.signing import new_message_id

log = structlog.get_logger("erp_api.webhooks")


async def publish(session: AsyncSession, event_type: str, payload: Mapping[str, Any]) -> list[int]:
    """Queue ``payload`` as an ``event_type`` event for every active subscription to it, in
    ``session``'s transaction; the ids of the new deliveries (empty if nobody subscribed).

    ``event_type`` must be one of ``events.EVENT_TYPES`` (ValueError otherwise); decimals and
    datetimes in ``payload`` are sent as strings.
    """
    return await publish_many(session, event_type, [payload])


async def publish_many(
    session: AsyncSession, event_type: str, payloads: Sequence[Mapping[str, Any]]
) -> list[int]:
    """``publish`` of several events of one type at once (one lookup of the subscriptions, one
    insert): the deliveries of each payload in turn, each in subscription order."""
    event = EventType(event_type)
    if not payloads:
        return []
    repository = WebhookRepository(session)
    subscribers = [
        subscription.id
        for subscription in await repository.subscriptions(include_disabled=False)
        if event.value in subscription.events
    ]
    if not subscribers:
        return []
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for payload in payloads:
        body = envelope(event, payload, now)
        rows.extend(
            {
                "subscription_id": subscription_id,
                "message_id": new_message_id(),
                "event_type": event.value,
                "payload": body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                # The caller dispatches right after its commit; the sweeper covers it if it cannot.
                "enqueued_at": now,
                "created_at": now,
            }
            for subscription_id in subscribers
        )
    return await repository.add_deliveries(rows)


async def dispatch(tasks: TaskClient, delivery_ids: Sequence[int]) -> None:
    """After the commit of ``publish``: publish a delivery task per id. Never raises for a down
    broker: the sweeper publishes what could not be published here."""
    for delivery_id in delivery_ids:
        try:
            await tasks.enqueue_webhook_delivery(delivery_id)
        except BrokerUnavailable as exc:
            log.warning("webhook_dispatch_deferred", deliveries=len(delivery_ids), error=str(exc))
            return


def envelope(event: EventType, payload: Mapping[str, Any], at: datetime) -> str:
    """The JSON text of a delivery's body."""
    document = {"type": event.value, "timestamp": at.isoformat(), "data": dict(payload)}
    return orjson.dumps(document, default=_json_default).decode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
