"""Tables of the webhooks package: subscriptions, their deliveries, and each delivery's attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, JsonDocument, UTCDateTime, utcnow

DELIVERY_STATUS_VALUES = ("pending", "delivered", "failed")
MAX_URL_LENGTH = 2048
MAX_ERROR_LENGTH = 500


class WebhookSubscription(Base):
    """Where to send which events, and the secret that signs them.

    The secret is stored as issued (``whsec_...``): signing needs it, so it cannot be hashed; it is
    shown once, in the response that creates the subscription, and never again. Subscriptions are
    disabled, never deleted, so that their delivery log stays readable.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    events: Mapped[list[str]] = mapped_column(JsonDocument)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebhookDelivery(Base):
    """One event for one subscription: the exact bytes to send, until delivered or given up.

    ``message_id`` is the ``webhook-id`` header, the same on every attempt, so receivers can drop
    repeats. While pending, ``next_attempt_at`` is when the next attempt is due (during an attempt:
    when its claim expires); ``enqueued_at`` is when a task for that attempt was last published.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN {DELIVERY_STATUS_VALUES!r}", name="status_known"),
        # The delivery log of a subscription, newest first.
        Index("ix_webhook_deliveries_subscription_id_id", "subscription_id", "id"),
        # The sweeper: pending deliveries that are due.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("webhook_subscriptions.id"))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One finished attempt of a delivery: what the receiver answered, or why there was no answer.

    An attempt whose worker died before it finished leaves no row (its number is skipped).
    """

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR_LENGTH))
    duration_ms: Mapped[int] = mapped_column(Integer)
