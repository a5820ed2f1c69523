"""Subscriptions and deliveries as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from erp_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def subscription_dict(subscription: WebhookSubscription) -> dict[str, Any]:
    """In the shape of ``schemas.WebhookOut``: everything but the secret."""
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": list(subscription.events),
        "description": subscription.description,
        "created_at": subscription.created_at,
        "disabled_at": subscription.disabled_at,
    }


def delivery_dict(delivery: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> dict[str, Any]:
    """In the shape of ``schemas.DeliveryOut``; ``attempts`` are the delivery's, in order."""
    return {
        "id": delivery.id,
        "message_id": delivery.message_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created_at": delivery.created_at,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at,
        "history": [
            {
                "attempt": attempt.attempt,
                "attempted_at": attempt.attempted_at,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in attempts
        ],
    }
