"""Request and response shapes of the charges API (validation and the OpenAPI document)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema

from erp_api.charges.states import ChargeStatus
from erp_api.schemas import QueryModel, StrictBody, UtcDatetime

MAX_PAGE_SIZE = 500
MAX_BATCH_ITEMS = 1_000
MAX_LOOKUP_NUMBERS = 10_000
MAX_QUANTITY_DIGITS = 18
QUANTITY_DECIMALS = 3


def _nfc(value: Any) -> Any:
    """Text in Unicode's composed form, so that "Süd" typed either way names the same line."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError(
            "must be printable: no control characters, line breaks or invisible format characters"
        )
    if value != value.strip():
        raise ValueError("must not begin or end with a space")
    return value


CHARGE_NUMBER_PATTERN = r"^[A-Z0-9][A-Z0-9._-]{2,31}$"
ChargeNumber = Annotated[str, StringConstraints(pattern=CHARGE_NUMBER_PATTERN)]
# Names people give: Unicode letters and digits, space and -_. (a line also /: an SKU is a path segment).
ProductSku = Annotated[
    str,
    StringConstraints(pattern=r"^[\p{L}\p{Nd}][\p{L}\p{Nd} ._-]{0,63}$"),
    BeforeValidator(_nfc),
    Field(
        description="1 to 64 letters, digits, spaces or -_. (any script), starting with a letter or digit",
        examples=["PUMP-A"],
    ),
]
LineName = Annotated[
    str,
    StringConstraints(pattern=r"^[\p{L}\p{Nd}][\p{L}\p{Nd} ._/-]{0,31}$"),
    BeforeValidator(_nfc),
    Field(
        description="1 to 32 letters, digits, spaces or -_./ (any script), starting with a letter or digit",
        examples=["Linie Süd"],
    ),
]
Unit = Annotated[
    str,
    StringConstraints(min_length=1, max_length=16, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$"),
    BeforeValidator(_nfc),
    AfterValidator(_printable),
    Field(
        description="1 to 16 printable characters, no control characters, e.g. pcs, °C, µm, mPa·s, %RH",
        examples=["°C"],
    ),
]
Quantity = Annotated[
    Decimal,
    Field(
        gt=0,
        max_digits=MAX_QUANTITY_DIGITS,
        decimal_places=QUANTITY_DECIMALS,
        allow_inf_nan=False,
        description="Greater than 0, at most 15 digits before the point and 3 after it",
    ),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10**15},
                {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,3})?$", "maxLength": 19},
            ],
            "description": "Greater than 0, at most 15 digits before the point and 3 after it",
            "examples": ["1250.5"],
        }
    ),
]


class ChargeSort(StrEnum):
    """The orders of the charge list: a field, descending with a leading "-"; ties by id the same way."""

    PRODUCED_AT_DESCENDING = "-produced_at"
    PRODUCED_AT = "produced_at"
    CHARGE_NUMBER = "charge_number"
    CHARGE_NUMBER_DESCENDING = "-charge_number"
    QUANTITY = "quantity"
    QUANTITY_DESCENDING = "-quantity"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Generated clients name the members after these ("-produced_at" makes no identifier).
        json_schema = handler.resolve_ref_schema(handler(schema))
        json_schema["x-enum-varnames"] = [member.name for member in cls]
        return json_schema

    @property
    def field(self) -> str:
        return self.value.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


class ChargeCreate(StrictBody):
    charge_number: ChargeNumber = Field(description="Unique, e.g. CH-2026-000123")
    product_sku: ProductSku
    quantity: Quantity
    unit: Unit
    line: LineName
    produced_at: UtcDatetime
    # Not settable: a charge starts planned and changes status only by a transition, which records
    # who moved it and why. Declared (and kept out of the schema) to refuse it with that explanation.
    status: SkipJsonSchema[None] = Field(default=None, exclude=True)

    @field_validator("status", mode="before")
    @classmethod
    def _created_planned(cls, _value: object) -> None:
        raise ValueError(
            "a charge is created planned; change its status with POST /api/v1/charges/{id}/transitions"
        )


class ChargeUpdate(StrictBody):
    quantity: Quantity | None = None
    unit: Unit | None = None
    line: LineName | None = None
    produced_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ChargeUpdate:
        if not self.model_fields_set:
            raise ValueError("name at least one of quantity, unit, line, produced_at")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TransitionRequest(StrictBody):
    to: ChargeStatus
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ChargeBatchCreate(StrictBody):
    items: Annotated[list[ChargeCreate], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]


class ChargeLookup(StrictBody):
    numbers: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=MAX_LOOKUP_NUMBERS)
    ]


class ChargeListQuery(QueryModel):
    status: list[ChargeStatus] | None = Field(
        None, description="Repeat to select several, e.g. ?status=planned&status=released"
    )
    product_sku: ProductSku | None = None
    line: LineName | None = None
    number_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")] | None = Field(
        None,
        description="Charges whose number starts with this text (case-insensitive; _ and . match themselves)",
        examples=["CH-2026-"],
    )
    produced_from: UtcDatetime | None = None
    produced_to: UtcDatetime | None = None
    sort: ChargeSort = Field(
        ChargeSort.PRODUCED_AT_DESCENDING,
        description="The order of the list; a cursor pages only the sort it was issued for",
    )
    include_total: bool = Field(
        False, description="Add total: how many charges match the filters, on every page"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_several(cls, value: Any) -> Any:
        # A caller in Python may name one status as such; the query string gives a list.
        return [value] if isinstance(value, str) else value

    @field_validator("status")
    @classmethod
    def _canonical_statuses(cls, value: list[ChargeStatus] | None) -> list[ChargeStatus] | None:
        # ?status=a&status=b and ?status=b&status=a&status=a select the same charges.
        return sorted(set(value)) if value else None

    @field_validator("number_prefix")
    @classmethod
    def _upper_case(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    @model_validator(mode="after")
    def _ordered_range(self) -> ChargeListQuery:
        if self.produced_from and self.produced_to and self.produced_from > self.produced_to:
            raise ValueError("produced_from must not be after produced_to")
        return self


class ChargeOut(BaseModel):
    """A charge as the API returns it; quantity is a decimal string to keep its precision."""

    id: int
    charge_number: str
    product_sku: str
    quantity: str = Field(examples=["1250.000"])
    unit: str
    line: str
    status: ChargeStatus
    produced_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class ChargePage(BaseModel):
    items: list[ChargeOut]
    total: int | None = Field(
        None, description="How many charges match the filters (only with include_total=true)"
    )
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page")


class ChargeBatchOut(BaseModel):
    items: list[ChargeOut]


class Actor(BaseModel):
    """Who made a change: a key's holder (name, role, key id), or the system (no key id)."""

    name: str | None
    role: str | None
    key_id: int | None


class StatusChangeOut(BaseModel):
    from_: ChargeStatus = Field(alias="from")
    to: ChargeStatus
    reason: str | None
    changed_at: datetime
    by: Actor


class ChargeHistory(BaseModel):
    """Every status change of a charge, oldest first: at most 1,000 (``truncated`` is true when the
    charge has more)."""

    charge_id: int
    items: list[StatusChangeOut]
    truncated: bool


class StatusCounts(BaseModel):
    """How many charges have each status."""

    planned: int
    in_production: int
    quarantined: int
    released: int
    rejected: int


class ProductOverview(BaseModel):
    product_sku: str
    charges: int = Field(description="How many charges of the product exist")
    by_status: StatusCounts


class ProductList(BaseModel):
    """Every product that has charges, in code point order: at most 1,000 (``truncated`` is true when
    there are more)."""

    items: list[ProductOverview]
    truncated: bool


class LineOverview(BaseModel):
    line: str
    charges: int = Field(description="How many charges of the line exist")
    by_status: StatusCounts


class LineList(BaseModel):
    """Every line that has charges, in code point order: at most 1,000 (``truncated`` is true when
    there are more)."""

    items: list[LineOverview]
    truncated: bool


class ChargeLookupOut(BaseModel):
    found: dict[str, ChargeOut]
    missing: list[str]
