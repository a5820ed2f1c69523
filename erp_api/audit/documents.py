"""The audit event as the API shows it."""

from __future__ import annotations

from typing import Any

from erp_api.audit.models import AuditEvent


def event_dict(event: AuditEvent) -> dict[str, Any]:
    """One event in the shape of ``schemas.AuditEventOut``."""
    return {
        "id": event.id,
        "occurred_at": event.occurred_at,
        "actor": {"key_id": event.actor_key_id, "name": event.actor_name, "role": event.actor_role},
        "entity": event.entity,
        "entity_id": event.entity_id,
        "action": event.action,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
    }
