"""Use cases of the webhooks API: subscribe, list, disable, read the delivery log (admins only).

Every change records itself in the audit trail in its own transaction, without the secret. Nothing
is cached: subscriptions are few and read by admins, the log is read to be current. Publishing
events is ``outbox.publish`` (re-exported here), called in the transaction of the change.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.audit import trail as audit
from erp_api.db import utcnow
from erp_api.errors import NotFound
from erp_api.pagination import decode_id_cursor, page_of, rows_to_fetch
from erp_api.webhooks.documents import delivery_dict, subscription_dict
from erp_api.webhooks.models import WebhookAttempt, WebhookSubscription
from erp_api.webhooks.outbox import dispatch, publish
from erp_api.webhooks.repository import WebhookRepository
from erp_api.webhooks.schemas import DeliveryListQuery, WebhookCreate
from erp_api.webhooks.signing import new_secret

__all__ = ["WebhookService", "dispatch", "publish"]

AUDIT_ENTITY = "webhook"


class WebhookService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, data: WebhookCreate) -> tuple[WebhookSubscription, str]:
        """A new subscription and its signing secret (which nothing shows again)."""
        secret = new_secret()
        async with self._sessions.begin() as session:
            subscription = await WebhookRepository(session).add_subscription(
                {
                    "url": data.url,
                    "events": [event.value for event in data.events],
                    "secret": secret,
                    "description": data.description,
                    "created_at": utcnow(),
                }
            )
            await audit.record(
                session,
                entity=AUDIT_ENTITY,
                entity_id=subscription.id,
                action="create",
                after=_audited(subscription),
            )
        return subscription, secret

    async def subscriptions(self, *, include_disabled: bool) -> list[WebhookSubscription]:
        async with self._sessions() as session:
            return await WebhookRepository(session).subscriptions(include_disabled=include_disabled)

    async def subscription(self, subscription_id: int) -> WebhookSubscription:
        async with self._sessions() as session:
            return await _existing(WebhookRepository(session), subscription_id)

    async def disable(self, subscription_id: int) -> WebhookSubscription:
        """Stop deliveries to an active subscription: nothing new is queued, pending ones fail
        unsent. 404 for an unknown or already disabled one."""
        async with self._sessions.begin() as session:
            subscription = await WebhookRepository(session).subscription(subscription_id, for_update=True)
            if subscription is None or subscription.disabled_at is not None:
                raise NotFound(f"no active webhook has the id {subscription_id}")
            before = _audited(subscription)
            subscription.disabled_at = utcnow()
            await audit.record(
                session,
                entity=AUDIT_ENTITY,
                entity_id=subscription_id,
                action="disable",
                before=before,
                after=_audited(subscription),
            )
        return subscription

    async def deliveries(self, subscription_id: int, query: DeliveryListQuery) -> dict[str, Any]:
        """One page of a subscription's deliveries, newest first, each with its attempts."""
        before_id = decode_id_cursor(query.cursor)
        async with self._sessions() as session:
            repository = WebhookRepository(session)
            await _existing(repository, subscription_id)
            rows = await repository.deliveries(
                subscription_id, status=query.status, before_id=before_id, limit=rows_to_fetch(query.limit)
            )
            page = page_of(rows, query.limit, key=lambda delivery: delivery.id)
            attempts: dict[int, list[WebhookAttempt]] = defaultdict(list)
            for attempt in await repository.attempts_of([delivery.id for delivery in page.rows]):
                attempts[attempt.delivery_id].append(attempt)
        return page.document(lambda delivery: delivery_dict(delivery, attempts[delivery.id]))


async def _existing(repository: WebhookRepository, subscription_id: int) -> WebhookSubscription:
    subscription = await repository.subscription(subscription_id)
    if subscription is None:
        raise NotFound(f"no webhook has the id {subscription_id}")
    return subscription


def _audited(subscription: WebhookSubscription) -> dict[str, Any]:
    """What the audit trail keeps: the subscription as the API shows it (so never the secret)."""
    return subscription_dict(subscription)
