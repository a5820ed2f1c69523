"""``GET /api/v1/audit``: the audit trail, newest first, in keyset pages."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.audit.models import AuditEvent
from erp_api.audit.schemas import AuditPage, AuditQuery
from erp_api.audit.trail import AuditLog
from erp_api.errors import ValidationFailed
from erp_api.http import json_response, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources

TAG = "audit"
_CURSOR_VERSION = 1


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_CURSOR_VERSION, event_id])).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    """The id a cursor stands for; anything this server did not issue is a 422."""
    try:
        version, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if version != _CURSOR_VERSION or type(event_id) is not int or not 0 < event_id < 2**63:
            raise ValueError("unknown cursor shape")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed(
            "query.cursor: not a cursor this server issued; use next_cursor from a previous page",
            [{"field": "query.cursor", "message": "invalid cursor", "type": "cursor_invalid"}],
        ) from None
    return event_id


def event_dict(event: AuditEvent) -> dict[str, Any]:
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


@describe(
    Operation(
        "Audit trail, newest first: who changed what, when, before and after",
        TAG,
        query=AuditQuery,
        responses={200: AuditPage},
    )
)
async def list_audit_events(request: Request) -> Response:
    query = read_query(request, AuditQuery)
    before_id = decode_cursor(query.cursor) if query.cursor else None
    rows = await AuditLog(resources(request).sessions).events(
        entity=query.entity, entity_id=query.entity_id, before_id=before_id, limit=query.limit + 1
    )
    page = rows[: query.limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > query.limit else None
    return json_response(
        {"items": [event_dict(event) for event in page], "next_cursor": next_cursor},
        headers={"Cache-Control": "no-store"},
    )


routes = [Route("/audit", list_audit_events, methods=["GET"])]
