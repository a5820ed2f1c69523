"""Request and response shapes of the analyses and jobs API (validation and the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from erp_api.analyses.states import AnalysisStatus

MAX_PAGE_SIZE = 100
MAX_BASELINE_PARAMETERS = 200

RuleSetName = Literal["nelson", "western_electric"]
ParameterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/%-]{0,63}$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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
    result: dict[str, Any] | None = Field(description='{"parameters": [...], "anomaly_count": n}')


class AnalysisPage(BaseModel):
    items: list[AnalysisOut]
    next_cursor: str | None


class AnalysisListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None
