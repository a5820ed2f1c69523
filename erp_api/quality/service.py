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
from erp_api.charges import cache_tags as charge_tags
from erp_api.db import utcnow
from erp_api.errors import ApiError, Conflict, NotFound
from erp_api.pagination import decode_cursor, encode_cursor
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.charts import control_chart, parameter_analysis
from erp_api.quality.documents import measurement_dict, spec_dict
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.models import QualitySpec
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
from erp_api.quality.spc.capability import capability_indices
from erp_api.quality.spc.chart import D2
from erp_api.quality.spc.series import Baseline, RuleSet
from erp_api.quality.summary_query import SeriesAggregate, summarize
from erp_api.quality.writer import MeasurementWriter, charge_refusal

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
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._ingestor = ingestor
        self._writer = MeasurementWriter(sessions, cache)

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
            if spec is None:
                spec = QualitySpec(product_sku=product_sku, parameter=parameter, created_at=now)
            spec.unit, spec.lsl, spec.usl, spec.target = body.unit, body.lsl, body.usl, body.target
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
        return spec, created

    async def spec_page(self, query: SpecListQuery) -> bytes:
        after = decode_cursor(query.cursor) if query.cursor else None

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await SpecRepository(session).page(
                    product_sku=query.product_sku, after=after, limit=query.limit + 1
                )
            return _page([spec_dict(spec) for spec in rows], rows, query.limit, "created_at")

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("specs", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.spec_list_tags(query.product_sku),
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

    async def measurement_page(self, charge_id: int, query: MeasurementListQuery) -> bytes:
        await self._charge_state(charge_id)
        after = decode_cursor(query.cursor) if query.cursor else None

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await MeasurementRepository(session).page(
                    charge_id, parameter=query.parameter, after=after, limit=query.limit + 1
                )
            return _page([measurement_dict(row) for row in rows], rows, query.limit, "measured_at")

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("measurements", charge_id, *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.charge_series_tags(charge_id),
        )

    # Summaries and SPC -------------------------------------------------------------------------

    async def summary(self, query: SummaryQuery) -> bytes:
        """Statistics and capability per product and parameter over a time range, cached."""

        async def load() -> bytes:
            async with self._sessions() as session:
                aggregates = await summarize(
                    session,
                    product_sku=query.product_sku,
                    parameter=query.parameter,
                    measured_from=query.from_,
                    measured_to=query.to,
                )
            return orjson.dumps({"items": [_summary_row(aggregate) for aggregate in aggregates]})

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("summary", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.summary_tags(query.product_sku),
        )

    async def control_chart(self, query: ControlChartQuery) -> bytes:
        await self._charge_state(query.charge_id)

        async def load() -> bytes:
            async with self._sessions() as session:
                points, _total = await MeasurementRepository(session).latest_series(
                    query.charge_id, query.parameter, query.limit
                )
            return orjson.dumps(control_chart(query.charge_id, query.parameter, points, rules=query.rules))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("chart", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.charge_series_tags(query.charge_id),
        )

    async def analyze_charge(
        self,
        charge_id: int,
        rules: RuleSet = "nelson",
        baseline: Mapping[str, Baseline] | None = None,
    ) -> dict[str, Any]:
        """SPC of every parameter measured on a charge: limits, capability and rule violations.

        ``baseline`` gives known centre and sigma per parameter (others use their own data). A
        violation's ``index`` is the 0-based position of the point in the parameter's series ordered
        by (measured_at, id); ``anomaly_count`` is the number of violations over all parameters.
        """
        async with self._sessions() as session:
            repository = MeasurementRepository(session)
            state = (await repository.charge_states([charge_id])).get(charge_id)
            if state is None:
                raise NotFound(f"charge {charge_id} does not exist")
            limits = await SpecRepository(session).limits(state[0])
            parameters = []
            for parameter in await repository.parameters(charge_id):
                points, total = await repository.latest_series(charge_id, parameter, MAX_ANALYSIS_POINTS)
                parameters.append(
                    parameter_analysis(
                        parameter,
                        points,
                        offset=total - len(points),
                        rules=rules,
                        baseline=(baseline or {}).get(parameter),
                        limits=limits.get(parameter, (None, None)),
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

        async def load() -> list[str]:
            async with self._sessions() as session:
                state = (await MeasurementRepository(session).charge_states([charge_id])).get(charge_id)
            if state is None:
                raise NotFound(f"charge {charge_id} does not exist")
            return list(state)

        product_sku, status = await self._cache.get_or_load(
            NAMESPACE, key=("charge-state", charge_id), loader=load, tags=[charge_tags.charge_tag(charge_id)]
        )
        return product_sku, status

    async def _writable_charge(self, charge_id: int) -> str:
        """The product of a charge that takes measurements; 404 or 409 otherwise (checked again on write)."""
        state = await self._charge_state(charge_id)
        refusal = charge_refusal(charge_id, state)
        if refusal is not None:
            raise refusal
        return state[0]


def _page(items: list[dict[str, Any]], rows: list[Any], limit: int, at: str) -> bytes:
    has_more = len(rows) > limit
    items = items[:limit]
    next_cursor = encode_cursor(getattr(rows[limit - 1], at), rows[limit - 1].id) if has_more else None
    return orjson.dumps({"items": items, "next_cursor": next_cursor})


def _summary_row(aggregate: SeriesAggregate) -> dict[str, Any]:
    lsl, usl = aggregate.lsl, aggregate.usl
    sigma_within = None if aggregate.mr_bar is None else aggregate.mr_bar / D2
    cp, cpk = capability_indices(aggregate.mean, sigma_within, lsl, usl)
    pp, ppk = capability_indices(aggregate.mean, aggregate.std, lsl, usl)
    return {
        "product_sku": aggregate.product_sku,
        "parameter": aggregate.parameter,
        "n": aggregate.n,
        "mean": aggregate.mean,
        "std": aggregate.std,
        "min": aggregate.min,
        "max": aggregate.max,
        "lsl": lsl,
        "usl": usl,
        "out_of_spec": aggregate.out_of_spec,
        "cp": cp,
        "cpk": cpk,
        "pp": pp,
        "ppk": ppk,
    }


def _audited_spec(spec: QualitySpec) -> dict[str, Any]:
    return {"unit": spec.unit, "lsl": spec.lsl, "usl": spec.usl, "target": spec.target}
