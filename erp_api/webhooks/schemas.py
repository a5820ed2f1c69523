"""Request and response shapes of the webhooks API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from erp_api.schemas import QueryModel, SchemaName, StrictBody
from erp_api.webhooks.events import EventType
from erp_api.webhooks.models import MAX_URL_LENGTH

MAX_DELIVERY_PAGE = 200
MAX_EVENTS = len(EventType)
DeliveryStatus = Annotated[Literal["pending", "delivered", "failed"], SchemaName("DeliveryStatus")]


def checked_url(url: str) -> str:
    """``url`` unchanged if deliveries can be sent to it: http(s), a host, no credentials."""
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in {"http", "https"}:
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        # It would be stored, listed and logged: authenticate the request by its signature instead.
        raise ValueError("must not carry credentials (user:password@); verify the signature instead")
    if parts.fragment:
        raise ValueError("must not have a #fragment (it is never sent)")
    if port == 0:
        raise ValueError("must not use port 0")
    return url


WebhookUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(checked_url)
]
Description = Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]


def _unique(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("name each event once")
    return events


class WebhookCreate(StrictBody):
    url: WebhookUrl = Field(description="Where deliveries are POSTed: an http(s) URL without credentials")
    events: Annotated[
        list[EventType], Field(min_length=1, max_length=MAX_EVENTS), AfterValidator(_unique)
    ] = Field(description="The events to deliver")
    description: Description | None = None


class WebhookListQuery(QueryModel):
    include_disabled: bool = False


class DeliveryListQuery(QueryModel):
    status: DeliveryStatus | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_DELIVERY_PAGE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class WebhookOut(BaseModel):
    """A subscription as the API shows it: never its secret."""

    id: int
    url: str
    events: list[EventType]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signing secret (whsec_...); shown only in this response",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null when none came back")
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    message_id: str = Field(description="The webhook-id header, the same on every attempt")
    event_type: EventType
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    history: list[AttemptOut] = Field(description="Finished attempts, first first")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
