"""Request and response shapes of the events API (validation and the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from erp_api.events.log import EventType
from erp_api.schemas import QueryModel

MAX_ID = 2**63 - 1


def _event_types(values: list[str] | None) -> list[str] | None:
    """``types`` repeated and/or comma-separated, each one of ``EventType``."""
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    known = {event_type.value for event_type in EventType}
    unknown = sorted({name for name in names if name not in known})
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return names or None


class EventStreamQuery(QueryModel):
    types: Annotated[list[str] | None, AfterValidator(_event_types)] = Field(
        None, description="Event types to send (repeat, or separate with commas); default: every type"
    )
    charge_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only events about this charge")
    product_sku: str | None = Field(None, min_length=1, max_length=64, description="Only this product")
    last_event_id: int | None = Field(
        None, ge=0, le=MAX_ID, description="Resume after this event id (as the Last-Event-ID header)"
    )
    ticket: str | None = Field(
        None, max_length=100, description="A ticket from POST /events/tickets, instead of Authorization"
    )


class EventTicketOut(BaseModel):
    ticket: str = Field(description="Single-use; opens one stream as GET /events?ticket=...")
    expires_in: int = Field(description="Seconds the ticket stays valid")
