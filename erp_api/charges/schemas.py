"""Request and response shapes of the charges API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from erp_api.charges.states import ChargeStatus

MAX_PAGE_SIZE = 500
MAX_BATCH_ITEMS = 1_000
MAX_LOOKUP_NUMBERS = 10_000

ChargeNumber = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9._-]{2,31}$")]
ProductSku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Unit = Annotated[str, StringConstraints(pattern=r"^[A-Za-z%][A-Za-z0-9%/]{0,15}$")]
LineName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,31}$")]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=3, allow_inf_nan=False)]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ChargeCreate(StrictBody):
    charge_number: ChargeNumber = Field(description="Unique, e.g. CH-2026-000123")
    product_sku: ProductSku
    quantity: Quantity
    unit: Unit
    line: LineName
    produced_at: AwareDatetime
    status: ChargeStatus = ChargeStatus.PLANNED


class ChargeUpdate(StrictBody):
    quantity: Quantity | None = None
    unit: Unit | None = None
    line: LineName | None = None
    produced_at: AwareDatetime | None = None

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


class ChargeListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: ChargeStatus | None = None
    product_sku: ProductSku | None = None
    line: LineName | None = None
    produced_from: AwareDatetime | None = None
    produced_to: AwareDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None

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
    next_cursor: str | None


class ChargeBatchOut(BaseModel):
    items: list[ChargeOut]


class ChargeLookupOut(BaseModel):
    found: dict[str, ChargeOut]
    missing: list[str]
