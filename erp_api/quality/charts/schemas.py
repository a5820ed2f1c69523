"""Response shapes of the control charts, the capability picture's query, and the rule catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from erp_api.charges.schemas import ProductSku
from erp_api.quality.schemas import ChartKind, Parameter, RuleSetName
from erp_api.quality.spc.catalogue import CatalogueSet as EngineCatalogueSet
from erp_api.quality.spc.chart_result import ChartName as EngineChartName
from erp_api.quality.spc.chart_result import SigmaMethod as EngineSigmaMethod
from erp_api.schemas import QueryModel, SchemaName

ChartName = Annotated[EngineChartName, SchemaName("ChartName")]
SigmaMethod = Annotated[EngineSigmaMethod, SchemaName("SigmaMethod")]
CatalogueSet = Annotated[EngineCatalogueSet, SchemaName("RuleFamily")]


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


class PlottedPoint(BaseModel):
    """One plotted statistic, the lines at it, and the rule ids it breaks."""

    label: str = Field(
        description="Time of a value or of a subgroup's first value; charge number of a charge or sample"
    )
    value: float | None
    n: int | None = Field(description="Values in the subgroup, or items / units in the sample")
    center: float | None
    ucl: float | None
    lcl: float | None
    violations: list[str]


class PlottedChart(BaseModel):
    """One chart; a line that varies from point to point (unequal sizes) is null here, set per point."""

    name: ChartName
    center: float | None
    ucl: float | None
    lcl: float | None
    zone_sigma: float | None = Field(description="The sigma of the plotted statistic when zones apply")
    process_sigma: float | None
    sigma_method: SigmaMethod | None
    rules: list[str] = Field(description="The rule ids checked on this chart")
    points: list[PlottedPoint]
    parameters: dict[str, float] = Field(description="EWMA lambda, L; CUSUM k, h, K, H, target")


class ControlChartOut(BaseModel):
    """The charts of one request, newest points last.

    A chart of one charge (``charge_id``, chart=imr) also carries ``limits`` and ``points``: the
    individuals chart with each measurement's id, time and zone.
    """

    chart: ChartKind
    product_sku: str
    charge_id: int | None
    parameter: str | None
    characteristic: str | None
    rules: RuleSetName
    subgroups: Literal["charge", "fixed"] | None = Field(
        description="X-bar charts: one subgroup per charge, or subgroup_size consecutive values"
    )
    subgroup_size: int | None
    limits_source: Literal["stored", "computed"] = Field(
        description="stored: the current control limits of the spec; computed: from the points shown"
    )
    limits_id: int | None = Field(description="The stored control limits used, if any")
    sigma: float | None = Field(description="The sigma of single values the lines come from")
    sigma_method: SigmaMethod | None
    charts: list[PlottedChart]
    limits: ChartLimits | None = Field(None, description="A chart of one charge (chart=imr) only")
    points: list[ChartPoint] | None = Field(None, description="A chart of one charge (chart=imr) only")


class CapabilityQuery(QueryModel):
    product_sku: ProductSku
    parameter: Parameter


class RuleOut(BaseModel):
    """One rule: its id as points list it, what it detects, its exact definition, where it runs."""

    id: str
    rule_set: CatalogueSet
    name: str
    description: str
    definition: str
    window: int = Field(description="How many consecutive points its pattern spans")
    parameters: dict[str, float]
    charts: list[ChartName]
    conditions: list[str]


class RuleCatalogue(BaseModel):
    """Every rule: Nelson N1-N8, Western Electric WE1-WE4, then EWMA and CUSUM."""

    items: list[RuleOut]
