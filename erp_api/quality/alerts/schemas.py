"""Request and response shapes of the quality alerts API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from erp_api.charges.schemas import ProductSku
from erp_api.quality.alerts.states import AlertStatus
from erp_api.quality.schemas import NamedRule, Parameter, Reason
from erp_api.schemas import QueryModel, StrictBody

MAX_PAGE_SIZE = 500


class AlertListQuery(QueryModel):
    status: list[AlertStatus] | None = Field(
        None, description="Repeat to select several, e.g. ?status=open&status=acknowledged"
    )
    charge_id: Annotated[int, Field(ge=1, lt=2**63)] | None = None
    product_sku: ProductSku | None = None
    parameter: Parameter | None = None
    rule: NamedRule | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class AlertLimits(BaseModel):
    """The control limits the rule was checked against (ucl/lcl = center +/- 3 sigma)."""

    id: int | None
    center: float
    sigma: float
    ucl: float
    lcl: float


class AlertOut(BaseModel):
    id: int
    charge_id: int
    product_sku: str
    parameter: str
    rule: NamedRule
    measurement_id: int = Field(description="The measurement at which the rule fired")
    measurement_ids: list[int] = Field(description="Every measurement the rule's pattern spans, in order")
    limits: AlertLimits
    status: AlertStatus
    reason: str | None = Field(description="The reason given with the last transition")
    opened_at: datetime
    updated_at: datetime
    changed_by: str | None = Field(description="Who made the last transition (None while untouched)")


class AlertPage(BaseModel):
    """Newest first."""

    items: list[AlertOut]
    next_cursor: str | None


class AlertTransitionRequest(StrictBody):
    to: AlertStatus
    reason: Reason | None = None
