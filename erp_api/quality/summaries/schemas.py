"""Request and response shapes of the summary and trend API."""

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
from erp_api.quality.spc.capability import CapabilityWarning
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


# The capability summary ---------------------------------------------------------------------------

SigmaWithinMethod = Annotated[Literal["pooled_sd", "moving_range"], SchemaName("SigmaWithinMethod")]
SampleKind = Annotated[Literal["all", "latest"], SchemaName("SampleKind")]


class IndexInterval(BaseModel):
    """A 95 % confidence interval of an index."""

    lower: float
    upper: float


class PartsPerMillion(BaseModel):
    """Parts per million below the LSL, above the USL, and in all; a side without a limit is null."""

    below: float | None
    above: float | None
    total: float


class AndersonDarlingOut(BaseModel):
    """Anderson-Darling normality test: A^2, Minitab's small-sample A*^2 and the p-value from A*^2."""

    statistic: float
    adjusted: float
    p_value: float


class HistogramOut(BaseModel):
    """Equal-width bins: edges (one more than the counts) and the count in each; the last bin is closed."""

    edges: list[float]
    counts: list[int]
    rule: Literal["freedman_diaconis", "sturges", "single_value"]


class CapabilitySample(BaseModel):
    """The points the sample-based figures of a row come from: all of the row's, or its latest ``size``."""

    kind: SampleKind
    size: int
    limit: int = Field(description="At most this many points per row")


class SummaryRow(BaseModel):
    """Statistics and capability of one product and parameter (or of one charge's part of it).

    Over all the row's points (from the rollups): n, mean, std = sigma_overall, min, max, out_of_spec,
    pp, ppk, ppm_expected_overall. From the row's ``sample`` (its latest points, at most
    ``sample.limit``): sigma_within and the figures it gives (cp, cpk, cp_ci, cpk_ci,
    ppm_expected_within; the intervals with n = sample size), cpm, ppm_observed, anderson_darling and
    histogram. Per charge every figure is of the sample. One-sided specs give only the defined indices.
    """

    product_sku: str
    parameter: str
    charge_id: int | None = Field(description="The charge, with group_by=charge")
    n: int
    mean: float
    std: float | None = Field(description="Sample standard deviation (n - 1)")
    min: float
    max: float
    lsl: float | None
    usl: float | None
    target: float | None
    out_of_spec: int
    sigma_within: float | None = Field(
        description="Pooled within-charge standard deviation / c4, or MR-bar / d2 when no charge has 2 points"
    )
    sigma_within_method: SigmaWithinMethod | None
    sigma_overall: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    cpm: float | None = Field(description="Minitab's Cpm about the spec's target")
    cp_ci: IndexInterval | None = Field(description="Chi-square interval")
    cpk_ci: IndexInterval | None = Field(description="Bissell's approximation")
    ppm_observed: PartsPerMillion | None
    ppm_expected_within: PartsPerMillion | None = Field(description="Normal model with sigma_within")
    ppm_expected_overall: PartsPerMillion | None = Field(description="Normal model with sigma_overall")
    anderson_darling: AndersonDarlingOut | None
    histogram: HistogramOut | None
    warnings: list[CapabilityWarning]
    sample: CapabilitySample


class SummaryOut(BaseModel):
    """Per parameter every row at once; per charge a page in (charge_id, parameter) order."""

    items: list[SummaryRow]
    next_cursor: str | None = Field(description="group_by=charge: the next page's cursor; null on the last")
