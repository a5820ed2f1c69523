"""Database access for webhooks: subscriptions, deliveries and attempts, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import insert_rows
from erp_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Subscriptions -------------------------------------------------------------------------------

    async def add_subscription(self, values: Mapping[str, Any]) -> WebhookSubscription:
        subscription = WebhookSubscription(**values)
        self.session.add(subscription)
        await self.session.flush()
        return subscription

    async def subscription(
        self, subscription_id: int, *, for_update: bool = False
    ) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def subscriptions(self, *, include_disabled: bool) -> list[WebhookSubscription]:
        stmt = select(WebhookSubscription).order_by(WebhookSubscription.id)
        if not include_disabled:
            stmt = stmt.where(WebhookSubscription.disabled_at.is_(None))
        return list((await self.session.scalars(stmt)).all())

    # Deliveries ----------------------------------------------------------------------------------

    async def add_deliveries(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """One INSERT ... RETURNING (``erp_api.db.insert_rows``); the ids in the order of ``rows``."""
        result = await insert_rows(self.session, WebhookDelivery, rows, returning=("id", "message_id"))
        ids = {row.message_id: row.id for row in result}
        return [ids[row["message_id"]] for row in rows]

    async def deliveries(
        self, subscription_id: int, *, status: str | None, before_id: int | None, limit: int
    ) -> list[WebhookDelivery]:
        """Newest first by id."""
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        if before_id is not None:
            stmt = stmt.where(WebhookDelivery.id < before_id)
        stmt = stmt.order_by(WebhookDelivery.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def attempts_of(self, delivery_ids: Sequence[int]) -> list[WebhookAttempt]:
        if not delivery_ids:
            return []
        stmt = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
        )
        return list((await self.session.scalars(stmt)).all())

    async def claim(
        self, delivery_id: int, *, now: datetime, lease_until: datetime, max_attempts: int
    ) -> WebhookDelivery | None:
        """Start the next attempt of a pending delivery that is due: one conditional UPDATE, so that
        of two workers holding the same task only one wins. None: not pending, not due, or spent.

        The attempt counts from here (it may reach the receiver even if its worker dies), and
        ``next_attempt_at`` becomes the claim's expiry: after it, the sweeper hands the delivery on.
        """
        stmt = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookDelivery.attempts < max_attempts,
            )
            .values(
                attempts=WebhookDelivery.attempts + 1,
                next_attempt_at=lease_until,
                enqueued_at=None,
                last_attempt_at=now,
            )
            .returning(WebhookDelivery)
        )
        result = await self.session.execute(stmt, execution_options={"populate_existing": True})
        return result.scalar_one_or_none()

    async def finish(self, delivery_id: int, attempt: int, values: Mapping[str, Any]) -> bool:
        """Record the outcome of ``attempt``, unless the delivery has moved on (its claim expired and
        another worker claimed a later attempt, which then owns the outcome)."""
        stmt = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == attempt,
            )
            .values(**values)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def add_attempt(self, values: Mapping[str, Any]) -> None:
        await self.session.execute(insert(WebhookAttempt).values(**values))

    # The sweeper ---------------------------------------------------------------------------------

    async def fail_spent(self, *, now: datetime, max_attempts: int, error: str) -> int:
        """Give up on pending deliveries whose last attempt was claimed and never finished."""
        stmt = (
            update(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookDelivery.attempts >= max_attempts,
            )
            .values(status="failed", next_attempt_at=None, last_error=error)
        )
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_due_enqueued(self, *, now: datetime, published_before: datetime, limit: int) -> list[int]:
        """Ids of pending deliveries that are due and have no recent task (lost, or never published),
        the most overdue first; they are marked as published ``now``."""
        due = and_(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.enqueued_at.is_(None), WebhookDelivery.enqueued_at <= published_before),
        )
        ids = list(
            (
                await self.session.scalars(
                    select(WebhookDelivery.id)
                    .where(due)
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(limit)
                )
            ).all()
        )
        if ids:
            await self.session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), due).values(enqueued_at=now)
            )
        return ids
