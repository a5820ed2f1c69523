"""Control charts and capability pictures of stored data, as JSON or SVG, cached until the data changes.

A chart reads the latest ``limit`` values, subgroups or samples (``erp_api.quality.charts.data``),
draws them with the SPC engine (``erp_api.quality.charts.builder``) against the series' stored phase I
limits when it has any, and is cached as bytes under the tags of everything it read: the charge's
series, or the product's series and charges, or the product's inspections; the limits tag for
variable charts. The picture of a chart is the same chart drawn by ``spc.svg``; the individuals
picture shows the spec limits too, so it also carries the product's tag (a spec change redraws it).

The capability picture studies the latest ``CAPABILITY_POINTS`` non-voided values of a product's
series against its spec, and says in its caption how many of how many values that is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.errors import NotFound, ValidationFailed
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.charge_state import charge_state
from erp_api.quality.charts.builder import (
    ChartDataError,
    LimitsSource,
    attribute_charts,
    capability_title,
    chart_document,
    chart_title,
    individual_charts,
    subgroup_charts,
)
from erp_api.quality.charts.data import ChartDataRepository, InspectionForm, fixed_subgroups
from erp_api.quality.charts.individuals import control_chart
from erp_api.quality.charts.schemas import CapabilityQuery
from erp_api.quality.limits.repository import ControlLimitsRepository
from erp_api.quality.models import QualitySpec
from erp_api.quality.repository import MeasurementRepository, SpecRepository
from erp_api.quality.schemas import (
    ATTRIBUTE_CHARTS,
    MAX_SUBGROUP_VALUES,
    SUBGROUP_CHARTS,
    ControlChartQuery,
)
from erp_api.quality.spc.capability import capability_report
from erp_api.quality.spc.chart import Baseline
from erp_api.quality.spc.chart_result import Chart
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.svg import capability_svg, control_chart_svg
from erp_api.quality.spec_rules import rule_ids_of, rule_set_of

NAMESPACE = "quality"
CAPABILITY_POINTS = 5_000


@dataclass(frozen=True, slots=True)
class DrawnChart:
    """A chart read and drawn: the engine's charts, where their lines came from, the legacy body of a
    charge's individuals chart, and the spec limits (read for pictures of individuals only)."""

    charts: list[Chart]
    limits: tuple[LimitsSource, int | None]
    legacy: dict[str, Any] | None
    spec: tuple[float | None, float | None]


class ControlChartService:
    """The control charts (JSON and SVG) and the capability picture; reads only."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def document(self, query: ControlChartQuery) -> bytes:
        """The chart as ``ControlChartOut`` JSON; NotFound for a missing charge, 422 for data the chart
        cannot take."""
        product_sku, tags = await self._subject(query)

        async def load() -> bytes:
            drawn = await self._draw(query, product_sku, with_spec=False)
            body = chart_document(query, product_sku, drawn.charts, limits=drawn.limits)
            return orjson.dumps(body if drawn.legacy is None else {**body, **drawn.legacy})

        return await self._cache.get_or_load(
            NAMESPACE, key=("chart", *sorted(query.model_dump(mode="json").items())), loader=load, tags=tags
        )

    async def picture(self, query: ControlChartQuery) -> bytes:
        """The chart as an SVG document (UTF-8)."""
        product_sku, tags = await self._subject(query)
        spec_tag = quality_tags.product_tag(product_sku)
        if query.chart == "imr" and spec_tag not in tags:
            tags = [*tags, spec_tag]

        async def load() -> bytes:
            drawn = await self._draw(query, product_sku, with_spec=query.chart == "imr")
            lsl, usl = drawn.spec
            svg = control_chart_svg(drawn.charts, title=chart_title(query, product_sku), lsl=lsl, usl=usl)
            return svg.encode("utf-8")

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("chart-svg", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=tags,
        )

    async def capability_picture(self, query: CapabilityQuery) -> bytes:
        """The capability study of the latest ``CAPABILITY_POINTS`` values as SVG; NotFound without a spec."""
        product_sku, parameter = query.product_sku, query.parameter

        async def load() -> bytes:
            async with self._sessions() as session:
                spec = await SpecRepository(session).get(product_sku, parameter)
                if spec is None:
                    raise NotFound(f"{product_sku} has no spec for {parameter!r}")
                rows, total = await ChartDataRepository(session).latest_values(
                    product_sku, parameter, CAPABILITY_POINTS
                )
                baseline, _ = await _stored_limits(session, product_sku, parameter)
            values = [value for value, _ in rows]
            report = capability_report(
                values,
                lsl=spec.lsl,
                usl=spec.usl,
                target=spec.target,
                rule_violations_present=_out_of_control(values, spec, baseline),
            )
            title = capability_title(product_sku, parameter, len(values), total)
            return capability_svg(report, title=title).encode("utf-8")

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("capability-svg", product_sku, parameter),
            loader=load,
            tags=quality_tags.product_series_tags(product_sku, parameter),
        )

    async def _subject(self, query: ControlChartQuery) -> tuple[str, list[str]]:
        """The product a chart is of and the tags of what it reads; NotFound for a missing charge."""
        if query.charge_id is not None:
            assert query.parameter is not None
            product_sku, _status = await charge_state(self._sessions, self._cache, query.charge_id)
            tags = [
                *quality_tags.charge_series_tags(query.charge_id),
                quality_tags.limits_tag(product_sku, query.parameter),
            ]
            return product_sku, tags
        assert query.product_sku is not None
        if query.chart in ATTRIBUTE_CHARTS:
            return query.product_sku, quality_tags.attribute_chart_tags(query.product_sku)
        assert query.parameter is not None
        return query.product_sku, quality_tags.product_series_tags(query.product_sku, query.parameter)

    async def _draw(self, query: ControlChartQuery, product_sku: str, *, with_spec: bool) -> DrawnChart:
        try:
            async with self._sessions() as session:
                return await self._read_and_draw(session, query, product_sku, with_spec)
        except ChartDataError as error:
            raise ValidationFailed(
                f"query.chart: {error}",
                [{"field": "query.chart", "message": str(error), "type": "chart_data"}],
            ) from None

    async def _read_and_draw(
        self, session: AsyncSession, query: ControlChartQuery, product_sku: str, with_spec: bool
    ) -> DrawnChart:
        if query.chart in ATTRIBUTE_CHARTS:
            assert query.characteristic is not None
            form: InspectionForm = "defectives" if query.chart in ("p", "np") else "defects"
            samples = await ChartDataRepository(session).latest_samples(
                product_sku, query.characteristic, form, query.limit
            )
            return DrawnChart(attribute_charts(query, samples), ("computed", None), None, (None, None))
        assert query.parameter is not None
        parameter = query.parameter
        baseline, limits = await _stored_limits(session, product_sku, parameter)
        spec: tuple[float | None, float | None] = (None, None)
        if with_spec:
            found = await SpecRepository(session).get(product_sku, parameter)
            spec = (None, None) if found is None else (found.lsl, found.usl)
        legacy = None
        data = ChartDataRepository(session)
        if query.chart in SUBGROUP_CHARTS:
            if query.subgroup_size is None:
                groups = await data.charge_subgroups(
                    product_sku, parameter, limit=query.limit, max_values=MAX_SUBGROUP_VALUES
                )
                subgroups = [group.values for group in groups]
                labels = [group.charge_number for group in groups]
            else:
                rows, _ = await data.latest_values(product_sku, parameter, query.limit * query.subgroup_size)
                subgroups, starts = fixed_subgroups(rows, query.subgroup_size)
                labels = [start.isoformat() for start in starts]
            return DrawnChart(subgroup_charts(query, subgroups, labels, baseline), limits, None, spec)
        if query.charge_id is not None:
            points, _ = await MeasurementRepository(session).latest_series(
                query.charge_id, parameter, query.limit
            )
            values = [point.value for point in points]
            times = [point.measured_at for point in points]
            if query.chart == "imr":
                stored = None if baseline is None or limits[1] is None else (limits[1], baseline)
                legacy = control_chart(query.charge_id, parameter, points, rules=query.rules, stored=stored)
        else:
            rows, _ = await data.latest_values(product_sku, parameter, query.limit)
            values = [value for value, _ in rows]
            times = [measured_at for _, measured_at in rows]
        labels = [at.isoformat() for at in times]
        return DrawnChart(individual_charts(query, values, labels, baseline), limits, legacy, spec)


async def _stored_limits(
    session: AsyncSession, product_sku: str, parameter: str
) -> tuple[Baseline | None, tuple[LimitsSource, int | None]]:
    """The series' current phase I limits as a baseline, and (source, id) to report."""
    current = await ControlLimitsRepository(session).current(product_sku, parameter)
    if current is None:
        return None, ("computed", None)
    return Baseline(current.center, current.sigma), ("stored", current.id)


def _out_of_control(values: list[float], spec: QualitySpec, baseline: Baseline | None) -> bool:
    """Whether the spec's own rules flag any of ``values`` on their individuals chart."""
    checked = set(rule_ids_of(spec))
    (x_chart, _mr) = individuals_charts(values, baseline=baseline, rules=rule_set_of(spec))
    return any(rule in checked for point in x_chart.points for rule in point.violations)
