"""Request and response shapes of the quality API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    model_validator,
)

from erp_api.charges.schemas import ProductSku, StrictBody, Unit

MAX_PAGE_SIZE = 500
MAX_MEASUREMENT_BATCH = 10_000
MAX_CHART_POINTS = 10_000
# Far beyond any physical measurement, and small enough that sums of squares over any realistic
# series stay finite in double precision; anything larger (e.g. 1e999) is refused.
MAX_ABS_VALUE = 1e15

PARAMETER_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
Parameter = Annotated[
    str,
    StringConstraints(pattern=PARAMETER_PATTERN),
    Field(
        description=(
            f"Parameter name matching {PARAMETER_PATTERN}: a lower-case letter, then up to 63 lower-case "
            "letters, digits or underscores, e.g. diameter_mm"
        ),
        examples=["diameter_mm"],
    ),
]
FiniteValue = Annotated[
    float,
    Field(
        allow_inf_nan=False,
        ge=-MAX_ABS_VALUE,
        le=MAX_ABS_VALUE,
        description=f"A finite JSON number with |value| <= {MAX_ABS_VALUE:.0e}; NaN and Infinity are refused",
    ),
]
RuleSetName = Literal["nelson", "western_electric"]


# Specifications ----------------------------------------------------------------------------------


class SpecPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_sku: ProductSku
    parameter: Parameter


class SpecBody(StrictBody):
    """Limits of one parameter; at least one of lsl and usl, lsl < usl, target within the limits."""

    unit: Unit
    lsl: FiniteValue | None = Field(None, description="Lower specification limit")
    usl: FiniteValue | None = Field(None, description="Upper specification limit")
    target: FiniteValue | None = Field(None, description="Nominal value, within the limits")

    @model_validator(mode="after")
    def _consistent_limits(self) -> SpecBody:
        if self.lsl is None and self.usl is None:
            raise ValueError("give at least one of lsl and usl")
        if self.lsl is not None and self.usl is not None and self.lsl >= self.usl:
            raise ValueError("lsl must be below usl")
        if self.target is not None and (
            (self.lsl is not None and self.target < self.lsl)
            or (self.usl is not None and self.target > self.usl)
        ):
            raise ValueError("target must lie within lsl and usl")
        return self


class SpecOut(BaseModel):
    product_sku: str
    parameter: str
    unit: str
    lsl: float | None
    usl: float | None
    target: float | None
    created_at: datetime
    updated_at: datetime


class SpecListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_sku: ProductSku | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class SpecPage(BaseModel):
    """Specifications in the order they were first created."""

    items: list[SpecOut]
    next_cursor: str | None


# Measurements ------------------------------------------------------------------------------------


class MeasurementIn(StrictBody):
    parameter: Parameter
    value: FiniteValue
    measured_at: AwareDatetime | None = Field(None, description="With a time zone; defaults to now")


class MeasurementBatchIn(StrictBody):
    items: Annotated[list[MeasurementIn], Field(min_length=1, max_length=MAX_MEASUREMENT_BATCH)]


class MeasurementPost(RootModel[MeasurementIn | MeasurementBatchIn]):
    """One measurement, or ``{"items": [...]}`` with up to 10,000 of them (stored all or nothing)."""


class MeasurementOut(BaseModel):
    id: int
    charge_id: int
    parameter: str
    value: float
    measured_at: datetime
    created_at: datetime


class MeasurementBatchOut(BaseModel):
    charge_id: int
    count: int


class MeasurementCreated(RootModel[MeasurementOut | MeasurementBatchOut]):
    """The stored measurement, or for a batch the number stored."""


class MeasurementListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parameter: Parameter | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class MeasurementPage(BaseModel):
    """Oldest first by (measured_at, id)."""

    items: list[MeasurementOut]
    next_cursor: str | None


# Summaries and charts ----------------------------------------------------------------------------


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_sku: ProductSku | None = None
    parameter: Parameter | None = None
    from_: AwareDatetime | None = Field(None, alias="from", description="Measured at or after (inclusive)")
    to: AwareDatetime | None = Field(None, description="Measured before (exclusive)")

    @model_validator(mode="after")
    def _ordered_range(self) -> SummaryQuery:
        if self.from_ and self.to and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class SummaryRow(BaseModel):
    """Statistics of one product and parameter; cp/cpk from sigma = MR-bar / 1.128, pp/ppk from std."""

    product_sku: str
    parameter: str
    n: int
    mean: float
    std: float | None = Field(description="Sample standard deviation (n - 1)")
    min: float
    max: float
    lsl: float | None
    usl: float | None
    out_of_spec: int
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


class SummaryOut(BaseModel):
    items: list[SummaryRow]


class ControlChartQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    charge_id: Annotated[int, Field(ge=1, lt=2**63)]
    parameter: Parameter
    rules: RuleSetName = "nelson"
    limit: Annotated[int, Field(ge=2, le=MAX_CHART_POINTS, description="The latest this many points")] = 1000


class ZoneBounds(BaseModel):
    lower: float
    upper: float


class ChartLimits(BaseModel):
    center: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    mr_bar: float | None
    mr_ucl: float | None
    zones: dict[Literal["C", "B", "A"], ZoneBounds] | None = Field(
        description="C within 1 sigma of the centre, B within 2, A within 3"
    )


class ChartPoint(BaseModel):
    index: int
    id: int
    value: float
    measured_at: datetime
    zone: Literal["C", "B", "A", "beyond"] | None
    violations: list[str]


class ControlChartOut(BaseModel):
    charge_id: int
    parameter: str
    rules: RuleSetName
    limits: ChartLimits
    points: list[ChartPoint]
