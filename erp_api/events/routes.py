"""``/api/v1/events``: the live event stream (SSE) and the tickets that open it from a browser.

Any authenticated role may stream; what it is sent depends on its role (``policy.py``). The stream
takes its credentials from ``Authorization`` or, because a browser's ``EventSource`` cannot send
that header, from a single-use ``ticket`` (``tickets.py``) — the route declares ``ticket_auth``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from erp_api.errors import ServiceUnavailable, ValidationFailed
from erp_api.events.hub import EventHub, HubNotReady, TooManyClients
from erp_api.events.policy import EventFilter, visible_types
from erp_api.events.schemas import MAX_ID, EventStreamQuery, EventTicketOut
from erp_api.events.stream import EventStreamResponse, frames
from erp_api.events.tickets import TicketStore
from erp_api.http import json_response, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import Resources, resources
from erp_api.security.access import Endpoint
from erp_api.security.principal import current_principal
from erp_api.security.roles import Role

TAG = "events"


def _live(ctx: Resources) -> tuple[EventHub, TicketStore]:
    if ctx.events is None or ctx.event_tickets is None:
        raise RuntimeError("the event hub exists only in the web app (open_resources(web=True))")
    return ctx.events, ctx.event_tickets


def _last_event_id(request: Request, query: EventStreamQuery) -> int | None:
    header = request.headers.get("last-event-id")
    if header is None or not header.strip():
        return query.last_event_id
    text = header.strip()
    if not text.isdigit() or int(text) > MAX_ID:
        raise ValidationFailed(
            "Last-Event-ID must be an event id (a non-negative integer)",
            [{"field": "header.Last-Event-ID", "message": "must be an event id", "type": "int_parsing"}],
        )
    return int(text)


@describe(
    Operation(
        "Stream live events (Server-Sent Events); resume with Last-Event-ID",
        TAG,
        query=EventStreamQuery,
        responses={200: None},
        produces={200: "text/event-stream"},
        errors=(503,),
    )
)
async def stream_events(request: Request) -> Any:
    ctx = resources(request)
    hub, _ = _live(ctx)
    query = read_query(request, EventStreamQuery)
    last_event_id = _last_event_id(request, query)
    allowed = visible_types(current_principal().role)
    wanted = allowed if query.types is None else allowed & set(query.types)
    event_filter = EventFilter(frozenset(wanted), query.charge_id, query.product_sku)
    settings = ctx.settings
    try:
        subscription = hub.subscribe(event_filter)
    except HubNotReady:
        raise ServiceUnavailable(
            "the event log is not reachable yet (the database is unavailable); retry later",
            headers={"Retry-After": "5"},
        ) from None
    except TooManyClients:
        raise ServiceUnavailable(
            f"this process serves its maximum of {settings.event_max_clients} event streams; retry later",
            headers={"Retry-After": "5"},
        ) from None
    body = frames(
        subscription,
        ctx.sessions,
        last_event_id=last_event_id,
        heartbeat_seconds=settings.event_heartbeat_seconds,
        retry_ms=settings.event_retry_ms,
        replay_max=settings.event_replay_max,
    )
    return EventStreamResponse(body, lambda: hub.unsubscribe(subscription))


@describe(
    Operation(
        "Get a single-use ticket (valid 60 s) to open the event stream without an Authorization header",
        TAG,
        responses={201: EventTicketOut},
    )
)
async def create_event_ticket(request: Request) -> Response:
    _, tickets = _live(resources(request))
    ticket = await tickets.issue(current_principal())
    return json_response(
        {"ticket": ticket, "expires_in": tickets.ttl_seconds}, 201, {"Cache-Control": "no-store"}
    )


routes = [
    Endpoint("/events", stream_events, "GET", Role.VIEWER, ticket_auth=True),
    Endpoint("/events/tickets", create_event_ticket, "POST", Role.VIEWER),
]
