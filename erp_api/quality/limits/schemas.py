"""Request and response shapes of the control-limits API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from erp_api.quality.schemas import MAX_ABS_VALUE, FiniteValue
from erp_api.schemas import StrictBody, UtcDatetime

MAX_BASELINE_CHARGES = 1_000


class LimitsBody(StrictBody):
    """Control limits set by hand: the process centre and sigma (UCL/LCL = center +/- 3 sigma)."""

    center: FiniteValue
    sigma: Annotated[float, Field(gt=0, allow_inf_nan=False, le=MAX_ABS_VALUE)]


class LimitsComputeBody(StrictBody):
    """The baseline: measured in [from, to), or the measurements of some charges; exactly one form."""

    from_: UtcDatetime | None = Field(None, alias="from", description="Measured at or after (inclusive)")
    to: UtcDatetime | None = Field(None, description="Measured before (exclusive)")
    charge_ids: (
        Annotated[
            list[Annotated[int, Field(ge=1, lt=2**63)]], Field(min_length=1, max_length=MAX_BASELINE_CHARGES)
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_form(self) -> LimitsComputeBody:
        by_time = self.from_ is not None or self.to is not None
        if by_time == (self.charge_ids is not None):
            raise ValueError('give either "from" and "to", or "charge_ids"')
        if by_time and (self.from_ is None or self.to is None):
            raise ValueError('give both "from" and "to"')
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class LimitsOut(BaseModel):
    id: int
    product_sku: str
    parameter: str
    center: float
    sigma: float
    ucl: float
    lcl: float
    source: Literal["manual", "computed"]
    basis: dict[str, Any] | None = Field(
        description='computed: {"from", "to", "n"} or {"charge_ids", "n"}; manual: null'
    )
    created_by: str
    created_at: datetime


class LimitsHistory(BaseModel):
    current: LimitsOut | None = Field(
        description="The limits the chart, analyses and rules use; null if none"
    )
    history: list[LimitsOut] = Field(description="Newest first, the current limits included (at most 100)")
