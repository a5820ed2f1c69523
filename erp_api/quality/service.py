"""Use cases of the quality package, shared by the HTTP routes and background tasks.

Writes commit, then invalidate the cache tags they affected, then return; reads come from the cache
as ready-to-send JSON bytes and touch the database only on a miss.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges.repository import ChargeRepository
from erp_api.db import utcnow
from erp_api.errors import ApiError, Conflict, NotFound
from erp_api.pagination import decode_cursor, page_of, rows_to_fetch
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.charge_state import charge_state
from erp_api.quality.charts.individuals import LimitsSource, parameter_analysis
from erp_api.quality.charts.service import ControlChartService
from erp_api.quality.documents import measurement_dict, spec_dict
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.limits.repository import ControlLimitsRepository
from erp_api.quality.models import Measurement, QualitySpec
from erp_api.quality.records import NewMeasurement, StoredMeasurement
from erp_api.quality.repository import MeasurementRepository, SpecRepository
from erp_api.quality.schemas import (
    ControlChartQuery,
    MeasurementBatchIn,
    MeasurementIn,
    MeasurementListQuery,
    SpecBody,
    SpecListQuery,
    SummaryQuery,
)
from erp_api.quality.spc.series import Baseline, RuleSet
from erp_api.quality.spec_rules import stored_rule_ids
from erp_api.quality.summaries.capability import summary_document
from erp_api.quality.summaries.rollups import SeriesRollups
from erp_api.quality.summaries.schemas import TrendQuery
from erp_api.quality.summaries.series_stats import hour_of
from erp_api.quality.summaries.trend import trend as quality_trend
from erp_api.quality.writer import MeasurementWriter, charge_refusal
from erp_api.security.principal import current_principal

NAMESPACE = "quality"
# An analysis reads at most this many of the latest points per parameter (indices stay absolute).
MAX_ANALYSIS_POINTS = 100_000


class QualityService:
    """Specifications, measurements, summaries and SPC; single measurements go through ``ingestor``.

    Without an ingestor (background tasks, scripts) each single measurement commits on its own.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheManager,
        ingestor: MeasurementIngestor | None = None,
        writer: MeasurementWriter | None = None,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._ingestor = ingestor
        # The web app passes the writer that wakes its rule checker (erp_api.resources).
        self._writer = writer or MeasurementWriter(sessions, cache)
        self._charts = ControlChartService(sessions, cache)

    # Specifications ----------------------------------------------------------------------------

    async def put_spec(self, product_sku: str, parameter: str, body: SpecBody) -> tuple[QualitySpec, bool]:
        """Create or replace the spec; returns it and whether it was created."""
        try:
            spec, created = await self._upsert_spec(product_sku, parameter, body)
        except IntegrityError:
            # A concurrent PUT created it between this one's read and insert: replace what it wrote.
            try:
                spec, created = await self._upsert_spec(product_sku, parameter, body)
            except IntegrityError:
                raise Conflict(f"the spec {product_sku}/{parameter} is being changed concurrently") from None
        await self._cache.invalidate_tags(quality_tags.tags_for_spec(product_sku))
        return spec, created

    async def _upsert_spec(
        self, product_sku: str, parameter: str, body: SpecBody
    ) -> tuple[QualitySpec, bool]:
        async with self._sessions.begin() as session:
            repository = SpecRepository(session)
            spec = await repository.get(product_sku, parameter, for_update=True)
            now = utcnow()
            created = spec is None
            before = None if spec is None else _audited_spec(spec)
            limits_before = None if spec is None else (spec.lsl, spec.usl)
            if spec is None:
                spec = QualitySpec(product_sku=product_sku, parameter=parameter, created_at=now)
            elif spec.unit != body.unit:
                await _refuse_unit_change(session, spec, body.unit)
            spec.unit, spec.lsl, spec.usl, spec.target = body.unit, body.lsl, body.usl, body.target
            spec.rules, spec.rule_ids = body.rules, stored_rule_ids(body.rules, body.rule_ids)
            spec.auto_hold = body.auto_hold
            spec.updated_at = now
            if created:
                await repository.add(spec)
            await audit.record(
                session,
                entity="quality_spec",
                entity_id=f"{product_sku}/{parameter}",
                action="create" if created else "update",
                before=before,
                after=_audited_spec(spec),
            )
            if (spec.lsl, spec.usl) != limits_before:
                # Out-of-spec counts in the rollups follow the limits; the recount reads the flushed spec.
                await session.flush()
                await SeriesRollups(session).limits_changed(product_sku, parameter)
        return spec, created

    async def spec_page(self, query: SpecListQuery) -> bytes:
        after = decode_cursor(query.cursor)

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await SpecRepository(session).page(
                    product_sku=query.product_sku, after=after, limit=rows_to_fetch(query.limit)
                )
            page = page_of(rows, query.limit, key=lambda spec: (spec.created_at, spec.id))
            return orjson.dumps(page.document(spec_dict))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("specs", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.spec_list_tags(query.product_sku),
        )

    async def spec_document(self, product_sku: str, parameter: str) -> bytes:
        """One spec as JSON, cached until the product's specs change; NotFound if there is none."""

        async def load() -> bytes:
            async with self._sessions() as session:
                spec = await SpecRepository(session).get(product_sku, parameter)
            if spec is None:
                raise NotFound(f"{product_sku} has no spec for {parameter!r}")
            return orjson.dumps(spec_dict(spec))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("spec", product_sku, parameter),
            loader=load,
            tags=quality_tags.spec_list_tags(product_sku),
        )

    # Measurements ------------------------------------------------------------------------------

    async def record(self, charge_id: int, data: MeasurementIn) -> StoredMeasurement:
        """Store one measurement durably (grouped with concurrent ones when an ingestor is running)."""
        product_sku = await self._writable_charge(charge_id)
        measured_at = data.measured_at.astimezone(UTC) if data.measured_at else utcnow()
        row = NewMeasurement(charge_id, product_sku, data.parameter, data.value, measured_at, audit.capture())
        if self._ingestor is not None:
            return await self._ingestor.submit(row)
        (result,) = await self._writer.write([row])
        if isinstance(result, ApiError):
            raise result
        return result

    async def record_batch(self, charge_id: int, data: MeasurementBatchIn) -> int:
        """Store up to 10,000 measurements of one charge, all or nothing; returns how many."""
        await self._writable_charge(charge_id)
        now = utcnow()
        # Aware datetimes are stored as the instant they name, whatever their zone: no conversion here.
        items = [(item.parameter, item.value, item.measured_at or now) for item in data.items]
        return await self._writer.write_batch(charge_id, items)

    async def void_measurement(self, measurement_id: int, reason: str) -> Measurement:
        """Void a measurement: it stays stored and listed, and counts in nothing from now on.

        404 if it does not exist, 409 if it is voided already; audited with the reason.
        """
        async with self._sessions.begin() as session:
            measurement = await MeasurementRepository(session).get(measurement_id, for_update=True)
            if measurement is None:
                raise NotFound(f"measurement {measurement_id} does not exist")
            if measurement.voided_at is not None:
                raise Conflict(
                    f"measurement {measurement_id} is already voided",
                    extra={"voided_at": measurement.voided_at, "voided_by": measurement.voided_by},
                )
            measurement.voided_at = utcnow()
            measurement.void_reason = reason
            measurement.voided_by = current_principal().name[:100]
            await audit.record(
                session,
                entity="measurement",
                entity_id=measurement_id,
                action="void",
                before={"voided": False},
                after={
                    "voided": True,
                    "reason": reason,
                    "charge_id": measurement.charge_id,
                    "parameter": measurement.parameter,
                    "value": measurement.value,
                },
            )
            await session.flush()
            await SeriesRollups(session).removed(
                [(measurement.product_sku, measurement.parameter, hour_of(measurement.measured_at))]
            )
        await self._cache.invalidate_tags(
            quality_tags.tags_for_measurements({(measurement.charge_id, measurement.product_sku)})
        )
        return measurement

    async def measured_parameters(self, charge_id: int) -> list[str]:
        """The parameters a charge has non-voided measurements of, sorted; NotFound if no such charge."""
        await self._charge_state(charge_id)
        async with self._sessions() as session:
            return await MeasurementRepository(session).parameters(charge_id)

    async def measurement_page(self, charge_id: int, query: MeasurementListQuery) -> bytes:
        await self._charge_state(charge_id)
        after = decode_cursor(query.cursor)

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await MeasurementRepository(session).page(
                    charge_id, parameter=query.parameter, after=after, limit=rows_to_fetch(query.limit)
                )
            page = page_of(rows, query.limit, key=lambda row: (row.measured_at, row.id))
            return orjson.dumps(page.document(measurement_dict))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("measurements", charge_id, *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.charge_series_tags(charge_id),
        )

    # Summaries and SPC -------------------------------------------------------------------------

    async def summary(self, query: SummaryQuery) -> bytes:
        """Statistics and capability per product and parameter (or per charge) over a time range,
        cached; an alert that opens or moves changes ``rule_violations_present``, so it invalidates."""

        async def load() -> bytes:
            async with self._sessions() as session:
                return orjson.dumps(await summary_document(session, query))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("summary", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=[*quality_tags.summary_tags(query.product_sku), *quality_tags.alert_list_tags()],
        )

    async def trend(self, query: TrendQuery) -> bytes:
        """Figures of one series per hour, day or week over a bounded range, cached."""

        async def load() -> bytes:
            async with self._sessions() as session:
                return orjson.dumps(await quality_trend(session, query))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("trend", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.summary_tags(query.product_sku),
        )

    async def control_chart(self, query: ControlChartQuery) -> bytes:
        """The control chart as JSON (``erp_api.quality.charts.service``): for a charge, its latest
        non-voided points against the series' stored control limits, if it has any."""
        return await self._charts.document(query)

    async def analyze_charge(
        self,
        charge_id: int,
        rules: RuleSet = "nelson",
        baseline: Mapping[str, Baseline] | None = None,
    ) -> dict[str, Any]:
        """SPC of every parameter measured on a charge: limits, capability and rule violations.

        Voided measurements count nowhere. Each parameter's centre and sigma come from ``baseline``
        when it names the parameter (``limits_source: "baseline"``), else from the series' stored
        control limits (``"stored"``, with their ``limits_id``), else from the charge's own data
        (``"computed"``). A violation's ``index`` is the 0-based position of the point in the
        parameter's non-voided series ordered by (measured_at, id); ``anomaly_count`` is the number of
        violations over all parameters.
        """
        async with self._sessions() as session:
            repository = MeasurementRepository(session)
            state = (await ChargeRepository(session).states([charge_id])).get(charge_id)
            if state is None:
                raise NotFound(f"charge {charge_id} does not exist")
            limits = await SpecRepository(session).limits(state[0])
            stored = await ControlLimitsRepository(session).current_of_product(state[0])
            parameters = []
            for parameter in await repository.parameters(charge_id):
                points, total = await repository.latest_series(charge_id, parameter, MAX_ANALYSIS_POINTS)
                known = (baseline or {}).get(parameter)
                current = stored.get(parameter)
                limits_id = None
                source: LimitsSource = "baseline" if known is not None else "computed"
                if known is None and current is not None:
                    known, limits_id, source = Baseline(current.center, current.sigma), current.id, "stored"
                parameters.append(
                    parameter_analysis(
                        parameter,
                        points,
                        offset=total - len(points),
                        rules=rules,
                        baseline=known,
                        limits=limits.get(parameter, (None, None)),
                        limits_source=source,
                        limits_id=limits_id,
                    )
                )
        return {
            "charge_id": charge_id,
            "product_sku": state[0],
            "rules": rules,
            "parameters": parameters,
            "anomaly_count": sum(len(parameter["violations"]) for parameter in parameters),
        }

    # Charges -----------------------------------------------------------------------------------

    async def _charge_state(self, charge_id: int) -> tuple[str, str]:
        """(product_sku, status) of a charge, cached under the charge's own tag; NotFound if none."""
        return await charge_state(self._sessions, self._cache, charge_id)

    async def _writable_charge(self, charge_id: int) -> str:
        """The product of a charge that takes measurements; 404 or 409 otherwise (checked again on write)."""
        state = await self._charge_state(charge_id)
        refusal = charge_refusal(charge_id, state)
        if refusal is not None:
            raise refusal
        return state[0]


def _audited_spec(spec: QualitySpec) -> dict[str, Any]:
    return {
        "unit": spec.unit,
        "lsl": spec.lsl,
        "usl": spec.usl,
        "target": spec.target,
        "rules": spec.rules,
        "rule_ids": spec.rule_ids,
        "auto_hold": spec.auto_hold,
    }


async def _refuse_unit_change(session: AsyncSession, spec: QualitySpec, unit: str) -> None:
    """A new unit would re-label every stored value of the series: refused once it has any."""
    count = await MeasurementRepository(session).count_series(spec.product_sku, spec.parameter)
    if count:
        raise Conflict(
            f"{spec.product_sku}/{spec.parameter} has {count} measurement(s) in {spec.unit}; changing the "
            f"unit to {unit} would re-label them. Create a new parameter for values in {unit} instead",
            extra={"measurements": count, "unit": spec.unit},
        )
