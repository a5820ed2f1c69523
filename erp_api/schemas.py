"""The bases of every request model (one for JSON bodies, one for query strings and path parameters),
the one type of every time a request carries, and the marker of a type shared by several models.

Both bases refuse unknown fields and are immutable. A JSON body is validated strictly: it carries
typed values, so ``"5"`` is no number and ``1`` no string. Query strings and path parameters arrive
as text, so their models coerce (``?limit=5`` is the integer 5).

``UtcDatetime`` is a time with a zone that names an instant between year 1 and year 9999 in UTC,
returned converted to UTC. ``9999-12-31T23:59:59-01:00`` has a zone and is a valid ISO 8601 time,
but its instant lies in year 10000, which no database column and no Python datetime can hold: it is
refused here (422) rather than overflowing wherever it is first converted (500).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema


class StrictBody(BaseModel):
    """A JSON request body: no unknown fields, no coercion between JSON types, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class QueryModel(BaseModel):
    """A query string or path parameters: no unknown fields, values coerced from text, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def in_utc(value: datetime) -> datetime:
    """``value`` (aware) converted to UTC; ValueError when that instant is outside years 1 to 9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is outside the representable range: in UTC it must fall "
            "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
        ) from None


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(in_utc),
    Field(
        description=(
            "An ISO 8601 date-time with a time zone (Z or ±hh:mm), naming an instant between "
            "years 1 and 9999 in UTC"
        ),
        examples=["2026-03-01T06:00:00Z"],
    ),
]
"""Every time a request carries: aware, converted to UTC, and within years 1 to 9999 there."""


class SchemaName:
    """Marks a type (e.g. a ``Literal`` used in several models) as one named schema: the OpenAPI
    document defines it once under ``name`` and every use refers to it with ``$ref``, so a generated
    client has one type for it instead of one per field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return cast(CoreSchema, {**handler(source), "ref": self.name})
