"""Request and response shapes of the quality API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    RootModel,
    StringConstraints,
    model_validator,
)

from erp_api.charges.schemas import ProductSku, Unit
from erp_api.quality.spc.rules import RULE_SETS, RuleName
from erp_api.quality.spec_rules import unknown_rule_ids
from erp_api.schemas import QueryModel, SchemaName, StrictBody, UtcDatetime

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
Characteristic = Annotated[
    str,
    StringConstraints(pattern=PARAMETER_PATTERN),
    Field(
        description=(
            f"What an attribute inspection counts, matching {PARAMETER_PATTERN} (like a parameter), "
            "e.g. scratches"
        ),
        examples=["scratches"],
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
RuleSetName = Annotated[Literal["nelson", "western_electric"], SchemaName("RuleSet")]
NamedRule = Annotated[RuleName, SchemaName("RuleName")]
RuleId = Annotated[str, StringConstraints(max_length=8)]
# A reason a person gives for a change: one line of printable text.
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(description="1 to 500 printable characters (no control characters or line breaks)"),
]


# Specifications ----------------------------------------------------------------------------------


class SpecPath(QueryModel):
    product_sku: ProductSku
    parameter: Parameter


class SpecBody(StrictBody):
    """Limits of one parameter; at least one of lsl and usl, lsl < usl, target within the limits."""

    unit: Unit
    lsl: FiniteValue | None = Field(None, description="Lower specification limit")
    usl: FiniteValue | None = Field(None, description="Upper specification limit")
    target: FiniteValue | None = Field(None, description="Nominal value, within the limits")
    rules: RuleSetName = Field("nelson", description="The run rules checked on every new measurement")
    rule_ids: Annotated[list[RuleId], Field(min_length=1, max_length=12)] | None = Field(
        None,
        description="A subset of the rule set's ids (N1-N8 or WE1-WE4); omitted or null: the whole set",
        examples=[["N1", "N2", "N5"]],
    )
    auto_hold: bool = Field(False, description="Quarantine a charge as soon as an alert opens for it")

    @model_validator(mode="after")
    def _known_rule_ids(self) -> SpecBody:
        if self.rule_ids is not None:
            unknown = unknown_rule_ids(self.rules, self.rule_ids)
            if unknown:
                raise ValueError(
                    f"rule_ids {', '.join(unknown)} are not rules of the {self.rules} set "
                    f"({', '.join(RULE_SETS[self.rules])})"
                )
        return self

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
    rules: RuleSetName
    rule_ids: list[str] | None = Field(description="The subset of the rule set checked; null: all of it")
    auto_hold: bool
    created_at: datetime
    updated_at: datetime


class SpecListQuery(QueryModel):
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
    measured_at: UtcDatetime | None = Field(None, description="With a time zone; defaults to now")


class MeasurementBatchIn(StrictBody):
    items: Annotated[list[MeasurementIn], Field(min_length=1, max_length=MAX_MEASUREMENT_BATCH)]


class MeasurementPost(RootModel[MeasurementIn | MeasurementBatchIn]):
    """One measurement, or ``{"items": [...]}`` with up to 10,000 of them (stored all or nothing)."""


class MeasurementOut(BaseModel):
    """A voided measurement stays listed, and counts in no summary, chart, limits or rule check."""

    id: int
    charge_id: int
    parameter: str
    value: float
    measured_at: datetime
    created_at: datetime
    voided: bool
    void_reason: str | None
    voided_at: datetime | None
    voided_by: str | None


class VoidBody(StrictBody):
    reason: Reason


class MeasurementBatchOut(BaseModel):
    charge_id: int
    count: int


class MeasurementCreated(RootModel[MeasurementOut | MeasurementBatchOut]):
    """The stored measurement, or for a batch the number stored."""


class MeasurementListQuery(QueryModel):
    parameter: Parameter | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class MeasurementPage(BaseModel):
    """Oldest first by (measured_at, id)."""

    items: list[MeasurementOut]
    next_cursor: str | None


# Summaries and charts ----------------------------------------------------------------------------


SummaryGrouping = Annotated[Literal["parameter", "charge"], SchemaName("SummaryGrouping")]
# A page of per-charge summary rows reads at most this many x 5,001 points.
MAX_SUMMARY_CHARGE_ROWS = 100


class SummaryQuery(QueryModel):
    product_sku: ProductSku | None = None
    parameter: Parameter | None = None
    from_: UtcDatetime | None = Field(None, alias="from", description="Measured at or after (inclusive)")
    to: UtcDatetime | None = Field(None, description="Measured before (exclusive)")
    group_by: SummaryGrouping = Field(
        "parameter", description="One row per product and parameter, or per charge and parameter"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_SUMMARY_CHARGE_ROWS)] = Field(
        20, description="group_by=charge: rows per page (each reads up to 5,001 of its latest points)"
    )
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="group_by=charge: next_cursor of the previous page"
    )

    @model_validator(mode="after")
    def _ordered_range(self) -> SummaryQuery:
        if self.from_ and self.to and self.from_ >= self.to:
            raise ValueError("from must be before to")
        if self.group_by != "charge" and {"limit", "cursor"} & self.model_fields_set:
            raise ValueError(
                "limit and cursor page group_by=charge; per parameter the summary is one document"
            )
        return self


# Control charts ----------------------------------------------------------------------------------

ChartKind = Annotated[
    Literal["imr", "xbar_r", "xbar_s", "ewma", "cusum", "p", "np", "c", "u"], SchemaName("ChartKind")
]
# Charts of individual values (of one charge, or of a product), charts of subgroups, attribute charts.
INDIVIDUAL_CHARTS = frozenset({"imr", "ewma", "cusum"})
SUBGROUP_CHARTS = frozenset({"xbar_r", "xbar_s"})
ATTRIBUTE_CHARTS = frozenset({"p", "np", "c", "u"})
MAX_SUBGROUP_SIZE = 100
MAX_RANGE_SUBGROUP_SIZE = 25  # the d2/d3 table of the X-bar/R chart
MAX_SUBGROUP_VALUES = 250_000
# Settings that apply to some charts only: giving one for another chart is a 422, not silently ignored.
_CHART_SETTINGS = {
    "subgroup_size": SUBGROUP_CHARTS,
    "ewma_lambda": frozenset({"ewma"}),
    "ewma_width": frozenset({"ewma"}),
    "k": frozenset({"cusum"}),
    "h": frozenset({"cusum"}),
}


class ControlChartQuery(QueryModel):
    """A chart of one charge's series (``charge_id``) or of a product's (``product_sku``)."""

    chart: ChartKind = Field(
        "imr",
        description=(
            "imr, ewma, cusum: individual values of a charge or of a product; xbar_r, xbar_s: subgroups "
            "of a product (one per charge, or subgroup_size consecutive values); p, np, c, u: a product's "
            "attribute inspections of a characteristic"
        ),
    )
    charge_id: Annotated[int, Field(ge=1, lt=2**63)] | None = None
    product_sku: ProductSku | None = None
    parameter: Parameter | None = None
    characteristic: Characteristic | None = None
    rules: RuleSetName = "nelson"
    limit: Annotated[
        int, Field(ge=2, le=MAX_CHART_POINTS, description="The latest this many values, subgroups or samples")
    ] = 1000
    subgroup_size: Annotated[int, Field(ge=2, le=MAX_SUBGROUP_SIZE)] | None = Field(
        None,
        description=(
            "X-bar charts: subgroups of this many consecutive values in measured order; omitted: one "
            "subgroup per charge in production order (charges with fewer than 2 values left out)"
        ),
    )
    ewma_lambda: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        0.2, alias="lambda", description="EWMA: the weight of the newest value, in (0, 1]"
    )
    ewma_width: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = Field(
        3.0, alias="L", description="EWMA: the limits' width in sigmas of the EWMA"
    )
    k: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        0.5, description="CUSUM: the slack K = k sigma"
    )
    h: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = Field(
        5.0, description="CUSUM: the decision interval H = h sigma"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ControlChartQuery:
        if (self.charge_id is None) == (self.product_sku is None):
            raise ValueError("give either charge_id or product_sku")
        if self.charge_id is not None and self.chart not in INDIVIDUAL_CHARTS:
            raise ValueError(f"chart={self.chart} charts a product: give product_sku instead of charge_id")
        if self.chart in ATTRIBUTE_CHARTS:
            if self.characteristic is None or self.parameter is not None:
                raise ValueError(f"chart={self.chart} charts inspections: give characteristic, not parameter")
        elif self.parameter is None or self.characteristic is not None:
            raise ValueError(f"chart={self.chart} charts measurements: give parameter, not characteristic")
        for name, charts in _CHART_SETTINGS.items():
            if name in self.model_fields_set and self.chart not in charts:
                alias = type(self).model_fields[name].alias or name
                raise ValueError(f"{alias} applies to chart={' or '.join(sorted(charts))} only")
        size = self.subgroup_size
        if size is not None and self.chart == "xbar_r" and size > MAX_RANGE_SUBGROUP_SIZE:
            raise ValueError(f"xbar_r takes subgroups of at most {MAX_RANGE_SUBGROUP_SIZE}: use xbar_s")
        if size is not None and size * self.limit > MAX_SUBGROUP_VALUES:
            raise ValueError(f"limit * subgroup_size must be at most {MAX_SUBGROUP_VALUES:,}")
        return self


# Control limits ----------------------------------------------------------------------------------
