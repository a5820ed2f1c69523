"""Request and response shapes of the trend API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from erp_api.charges.schemas import ProductSku
from erp_api.quality.schemas import Parameter
from erp_api.quality.summaries.series_stats import periods_covering
from erp_api.schemas import QueryModel, SchemaName, UtcDatetime

MAX_TREND_PERIODS = 1_000
TrendPeriod = Annotated[Literal["hour", "day", "week"], SchemaName("TrendPeriod")]


class TrendQuery(QueryModel):
    product_sku: ProductSku
    parameter: Parameter
    period: TrendPeriod = Field(
        "day", description="UTC hours, UTC days, or ISO weeks (from Monday 00:00 UTC)"
    )
    from_: UtcDatetime = Field(alias="from", description="Measured at or after; rounded down to its period")
    to: UtcDatetime = Field(description="Measured before; rounded up to the end of its period")

    @model_validator(mode="after")
    def _bounded(self) -> TrendQuery:
        if self.from_ >= self.to:
            raise ValueError("from must be before to")
        first, end = periods_covering(self.from_, self.to, self.period)
        if end - first > MAX_TREND_PERIODS:
            raise ValueError(
                f"the range spans {end - first} {self.period}s; at most {MAX_TREND_PERIODS}: "
                "narrow it or choose a longer period"
            )
        return self


class TrendPoint(BaseModel):
    """One period with measurements; cpk from sigma = MR-bar / 1.128 within the period."""

    start: datetime
    n: int
    mean: float
    std: float | None = Field(description="Sample standard deviation (n - 1)")
    min: float
    max: float
    out_of_spec: int
    cpk: float | None


class TrendOut(BaseModel):
    """Whole periods covering [from, to); periods without measurements are left out."""

    product_sku: str
    parameter: str
    period: TrendPeriod
    from_: datetime = Field(alias="from", description="Start of the first period")
    to: datetime = Field(description="End of the last period")
    lsl: float | None
    usl: float | None
    items: list[TrendPoint]
