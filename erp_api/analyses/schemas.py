"""Request and response shapes of the analyses and jobs API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from erp_api.analyses.states import AnalysisStatus
from erp_api.quality.schemas import NamedRule, RuleSetName
from erp_api.schemas import QueryModel, StrictBody

MAX_PAGE_SIZE = 100
MAX_BASELINE_PARAMETERS = 200

ParameterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/%-]{0,63}$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class BaselineIn(StrictBody):
    """Known centre and sigma of a parameter (e.g. from a reference period) instead of the data's own."""

    center: FiniteFloat
    sigma: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class AnalysisCreate(StrictBody):
    rules: RuleSetName = Field(description="Which run rules to apply")
    baseline: Annotated[dict[ParameterName, BaselineIn], Field(max_length=MAX_BASELINE_PARAMETERS)] | None = (
        Field(None, description="Per parameter centre and sigma; parameters not named use their own data")
    )


class AnalysisAccepted(BaseModel):
    id: int
    status: AnalysisStatus
    status_url: str = Field(examples=["/api/v1/analyses/42"])


class AnalysisViolation(BaseModel):
    rule: NamedRule
    index: int = Field(
        description="0-based position of the point in the parameter's non-voided series, by (measured_at, id)"
    )
    value: float
    measured_at: datetime


class ParameterAnalysis(BaseModel):
    """The individuals chart of one parameter of the charge: its limits, capability and violations."""

    parameter: str
    n: int = Field(description="How many points were analysed (the latest 100,000 at most)")
    center: float | None
    sigma: float | None
    ucl: float | None
    lcl: float | None
    mr_bar: float | None
    mr_ucl: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    violations: list[AnalysisViolation]
    limits_source: Literal["baseline", "stored", "computed"] = Field(
        description="baseline: the request's; stored: the spec's control limits; computed: from the points"
    )
    limits_id: int | None = Field(description="The stored control limits used, if any")


class AnalysisResult(BaseModel):
    """What a succeeded analysis found, per parameter the charge has measurements of."""

    charge_id: int
    product_sku: str
    rules: RuleSetName
    parameters: list[ParameterAnalysis]
    anomaly_count: int = Field(description="Violations over all parameters")


class AnalysisOut(BaseModel):
    """An analysis as the API returns it; ``result`` is the quality service's analysis once succeeded."""

    id: int
    charge_id: int
    rules: RuleSetName
    baseline: dict[str, BaselineIn] | None
    status: AnalysisStatus
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: AnalysisResult | None = Field(description="Set once the analysis succeeded")


class AnalysisPage(BaseModel):
    items: list[AnalysisOut]
    next_cursor: str | None


class AnalysisListQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None
