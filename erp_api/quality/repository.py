"""Database access for quality specifications and measurements: the queries the services need."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    CursorResult,
    Row,
    Select,
    Subquery,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.repository import ChargeRepository
from erp_api.quality.models import Measurement, QualitySpec
from erp_api.quality.records import NewMeasurement, SeriesPoints, StoredMeasurement

# Rows per statement of a bulk insert: within SQLite's and asyncpg's bound-parameter limits for
# the multi-row INSERT, and bounding the memory of one COPY buffer.
BULK_CHUNK = 5_000
RECORD_COLUMNS = ("charge_id", "product_sku", "parameter", "value", "measured_at", "created_at")
# One row for a bulk insert, in RECORD_COLUMNS order: plain tuples, the cheapest thing to build per row.
MeasurementRecord = tuple[int, str, str, float, datetime, datetime]
# One transaction's rows of a series, as its rule-check outbox row names them: (first id, created_at, count).
CommitRows = tuple[int, datetime, int]


class DeletedMeasurement(NamedTuple):
    id: int
    charge_id: int
    product_sku: str
    parameter: str
    measured_at: datetime


class SpecRepository:
    """Queries on ``quality_specs`` within the caller's session and transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, product_sku: str, parameter: str, *, for_update: bool = False) -> QualitySpec | None:
        stmt = select(QualitySpec).where(
            QualitySpec.product_sku == product_sku, QualitySpec.parameter == parameter
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_many(self, series: Collection[tuple[str, str]]) -> dict[tuple[str, str], QualitySpec]:
        """The specs of the (product, parameter) ``series`` that have one, in one query."""
        if not series:
            return {}
        stmt = select(QualitySpec).where(
            QualitySpec.product_sku.in_(sorted({sku for sku, _ in series})),
            QualitySpec.parameter.in_(sorted({parameter for _, parameter in series})),
        )
        wanted = set(series)
        return {
            key: spec
            for spec in await self.session.scalars(stmt)
            if (key := (spec.product_sku, spec.parameter)) in wanted
        }

    async def add(self, spec: QualitySpec) -> QualitySpec:
        self.session.add(spec)
        await self.session.flush()
        return spec

    async def page(
        self, *, product_sku: str | None, after: tuple[datetime, int] | None, limit: int
    ) -> list[QualitySpec]:
        """Oldest first by (created_at, id); ``after`` is the last row of the previous page."""
        stmt = select(QualitySpec)
        if product_sku is not None:
            stmt = stmt.where(QualitySpec.product_sku == product_sku)
        if after is not None:
            stmt = stmt.where(tuple_(QualitySpec.created_at, QualitySpec.id) > tuple_(*after))
        stmt = stmt.order_by(QualitySpec.created_at, QualitySpec.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def parameters_by_product(
        self, product_skus: Sequence[str]
    ) -> dict[str, dict[str, tuple[float | None, float | None]]]:
        """The parameters with a spec and their (lsl, usl), per product, in one query: what a measurement
        write validates, and the limits its rollups count out-of-spec points against. The spec rows
        are share-locked (PostgreSQL), so their limits cannot change before the write commits."""
        known: dict[str, dict[str, tuple[float | None, float | None]]] = {sku: {} for sku in product_skus}
        if not known:
            return known
        stmt = (
            select(QualitySpec.product_sku, QualitySpec.parameter, QualitySpec.lsl, QualitySpec.usl)
            .where(QualitySpec.product_sku.in_(sorted(known)))
            .order_by(QualitySpec.product_sku, QualitySpec.parameter)
            .with_for_update(read=True)
        )
        for row in await self.session.execute(stmt):
            known[row.product_sku][row.parameter] = (row.lsl, row.usl)
        return known

    async def limits(self, product_sku: str) -> dict[str, tuple[float | None, float | None]]:
        """(lsl, usl) per parameter of one product."""
        stmt = select(QualitySpec.parameter, QualitySpec.lsl, QualitySpec.usl).where(
            QualitySpec.product_sku == product_sku
        )
        return {row.parameter: (row.lsl, row.usl) for row in await self.session.execute(stmt)}


# A measurement's position in an export: (parameter, measured_at, id).
MeasurementExportKey = tuple[str, datetime, int]


@dataclass(frozen=True, slots=True)
class MeasurementSelection:
    """Measurements an export holds: of a charge or a product (at least one is set). Ordered by
    (parameter, measured_at, id): one index range for each way of selecting them."""

    charge_id: int | None = None
    product_sku: str | None = None
    parameter: str | None = None
    measured_from: datetime | None = None
    measured_to: datetime | None = None
    include_voided: bool = False


class ExportedMeasurement(NamedTuple):
    """One measurement as an export writes it, with its charge's number."""

    id: int
    charge_id: int
    charge_number: str
    product_sku: str
    parameter: str
    value: float
    measured_at: datetime
    created_at: datetime
    voided_at: datetime | None
    void_reason: str | None
    voided_by: str | None


class MeasurementRepository:
    """Queries on ``measurements`` in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_returning(
        self, rows: Sequence[NewMeasurement], created_at: datetime
    ) -> list[StoredMeasurement]:
        """One multi-row INSERT ... RETURNING; the result is in the order of ``rows``.

        Neither database promises RETURNING in VALUES order, so rows are matched back by content;
        rows with equal content are interchangeable, so any pairing among them is right.
        """
        stmt = insert(Measurement).returning(
            Measurement.id,
            Measurement.charge_id,
            Measurement.parameter,
            Measurement.value,
            Measurement.measured_at,
        )
        params = [_values(row, created_at) for row in rows]
        returned = (await self.session.execute(stmt, params)).all()
        by_content: dict[tuple[int, str, float, datetime], list[Row[int, int, str, float, datetime]]] = {}
        for item in returned:
            by_content.setdefault((item.charge_id, item.parameter, item.value, item.measured_at), []).append(
                item
            )
        stored = []
        for row in rows:
            item = by_content[row.content()].pop()
            stored.append(
                StoredMeasurement(
                    item.id, row.charge_id, row.parameter, row.value, row.measured_at, created_at
                )
            )
        return stored

    async def insert_bulk(self, records: Sequence[MeasurementRecord]) -> int:
        """Insert rows without returning ids, in chunks: COPY on PostgreSQL, a multi-row INSERT on SQLite."""
        connection = await self.session.connection()
        for start in range(0, len(records), BULK_CHUNK):
            chunk = records[start : start + BULK_CHUNK]
            if connection.dialect.name == "postgresql":
                # COPY measured ~1.5x as fast as an INSERT of unnest() arrays (benchmarks/bench_quality.py).
                # The caller's earlier query has opened the transaction this COPY joins.
                raw = await connection.get_raw_connection()
                await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                    Measurement.__tablename__, records=chunk, columns=RECORD_COLUMNS
                )
            else:
                await self.session.execute(
                    insert(Measurement), [dict(zip(RECORD_COLUMNS, record, strict=True)) for record in chunk]
                )
        return len(records)

    async def page(
        self, charge_id: int, *, parameter: str | None, after: tuple[datetime, int] | None, limit: int
    ) -> list[Measurement]:
        """Oldest first by (measured_at, id); ``after`` is the last row of the previous page."""
        stmt = select(Measurement).where(Measurement.charge_id == charge_id)
        if parameter is not None:
            stmt = stmt.where(Measurement.parameter == parameter)
        if after is not None:
            stmt = stmt.where(tuple_(Measurement.measured_at, Measurement.id) > tuple_(*after))
        stmt = stmt.order_by(Measurement.measured_at, Measurement.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def get(self, measurement_id: int, *, for_update: bool = False) -> Measurement | None:
        stmt = select(Measurement).where(Measurement.id == measurement_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def parameters(self, charge_id: int) -> list[str]:
        """The parameters a charge has non-voided measurements of, sorted."""
        stmt = (
            select(Measurement.parameter)
            .where(Measurement.charge_id == charge_id, Measurement.voided_at.is_(None))
            .distinct()
        )
        return sorted((await self.session.scalars(stmt)).all())

    async def count_series(self, product_sku: str, parameter: str) -> int:
        """How many measurements a (product, parameter) series holds, voided ones included."""
        stmt = select(func.count()).where(
            Measurement.product_sku == product_sku, Measurement.parameter == parameter
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def baseline_values(
        self,
        product_sku: str,
        parameter: str,
        *,
        measured_from: datetime | None = None,
        measured_to: datetime | None = None,
        charge_ids: Sequence[int] | None = None,
        limit: int,
    ) -> list[float]:
        """Up to ``limit`` non-voided values of a series in measured order (measured_at, id),
        measured in [measured_from, measured_to) and/or on the given charges."""
        stmt = select(Measurement.value).where(
            Measurement.product_sku == product_sku,
            Measurement.parameter == parameter,
            Measurement.voided_at.is_(None),
        )
        if measured_from is not None:
            stmt = stmt.where(Measurement.measured_at >= measured_from)
        if measured_to is not None:
            stmt = stmt.where(Measurement.measured_at < measured_to)
        if charge_ids is not None:
            stmt = stmt.where(Measurement.charge_id.in_(sorted(set(charge_ids))))
        stmt = stmt.order_by(Measurement.measured_at, Measurement.id).limit(limit)
        return [float(value) for value in (await self.session.scalars(stmt)).all()]

    async def latest_series(
        self, charge_id: int, parameter: str, limit: int
    ) -> tuple[list[Row[int, float, datetime, int]], int]:
        """The last ``limit`` non-voided points (id, value, measured_at) of a series in time order, and
        how many non-voided points it has.

        The length comes from the same statement, so it always counts the points returned.
        """
        stmt = (
            select(
                Measurement.id,
                Measurement.value,
                Measurement.measured_at,
                func.count().over().label("total"),
            )
            .where(
                Measurement.charge_id == charge_id,
                Measurement.parameter == parameter,
                Measurement.voided_at.is_(None),
            )
            .order_by(Measurement.measured_at.desc(), Measurement.id.desc())
            .limit(limit)
        )
        rows = list((await self.session.execute(stmt)).all())
        rows.reverse()
        return rows, int(rows[0].total) if rows else 0

    async def delete_measured_before(self, cutoff: datetime, limit: int) -> list[DeletedMeasurement]:
        """Delete up to ``limit`` measurements taken before ``cutoff``; what each of them was.

        The caller updates the rollups of the returned rows' hours in the same transaction, and
        invalidates their series once it has committed.
        """
        chosen = select(Measurement.id).where(Measurement.measured_at < cutoff).limit(limit)
        stmt = (
            delete(Measurement)
            .where(Measurement.id.in_(chosen.scalar_subquery()))
            .returning(
                Measurement.id,
                Measurement.charge_id,
                Measurement.product_sku,
                Measurement.parameter,
                Measurement.measured_at,
            )
        )
        return [DeletedMeasurement(*row) for row in await self.session.execute(stmt)]

    # The on-ingest rule check (rule_checker.py) ------------------------------------------------

    async def max_id(self) -> int:
        """The highest id stored (0 for none): ids assigned later are higher (one index probe)."""
        return int(await self.session.scalar(select(func.max(Measurement.id))) or 0)

    async def added_since(
        self, after_id: int, charge_id: int, created_at: datetime
    ) -> list[tuple[str, datetime, int, float]]:
        """(parameter, measured_at, id, value) of the rows above ``after_id`` that the charge got at
        ``created_at`` (one transaction's rows, read back after a bulk insert that returns no ids):
        a scan of the primary key from ``after_id`` on, whatever the series' history."""
        stmt = select(
            Measurement.parameter, Measurement.measured_at, Measurement.id, Measurement.value
        ).where(
            Measurement.id > after_id,
            Measurement.charge_id == charge_id,
            Measurement.created_at == created_at,
        )
        return [
            (parameter, measured_at, point_id, value)
            for parameter, measured_at, point_id, value in await self._execute(stmt)
        ]

    async def commit_ids(self, product_sku: str, parameter: str, commits: Sequence[CommitRows]) -> list[int]:
        """The ids of the non-voided points some transactions added to a series, each given by its
        outbox row as (first_id, created_at, count): the first ``count`` rows from ``first_id`` on
        (primary key order) with its ``created_at``."""
        rows = _commit_rows(product_sku, parameter, commits)
        return [row.id for row in await self._execute(select(rows.c.id).where(rows.c.counts))]

    async def earliest_position(self, measurement_ids: Collection[int]) -> tuple[datetime, int] | None:
        """The series position (measured_at, id) of the earliest of these measurements, voided or not;
        None if none of them is stored. One primary-key lookup each, whatever the table's size
        (a list of ids would let the planner scan a small table instead)."""
        parts = [
            select(Measurement.measured_at, Measurement.id).where(Measurement.id == measurement_id)
            for measurement_id in sorted(set(measurement_ids))
        ]
        if not parts:
            return None
        found = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()
        stmt = select(found.c.measured_at, found.c.id).order_by(found.c.measured_at, found.c.id).limit(1)
        row = (await self._execute(stmt)).first()
        return None if row is None else (row.measured_at, row.id)

    async def position(self, measurement_id: int) -> tuple[datetime, int] | None:
        """Where a measurement sits in its series: (measured_at, id)."""
        measured_at = await self.session.scalar(
            select(Measurement.measured_at).where(Measurement.id == measurement_id)
        )
        return None if measured_at is None else (measured_at, measurement_id)

    async def points_before(
        self,
        product_sku: str,
        parameter: str,
        position: tuple[datetime, int],
        limit: int,
        *,
        new: Sequence[CommitRows] = (),
    ) -> SeriesPoints:
        """The last ``limit`` non-voided points of a series before ``position``, in series order;
        ``new`` marks the points of these transactions (see ``commit_ids``)."""
        stmt = (
            _series_points(product_sku, parameter, new)
            .where(tuple_(Measurement.measured_at, Measurement.id) < tuple_(*position))
            .order_by(Measurement.measured_at.desc(), Measurement.id.desc())
            .limit(limit)
        )
        return SeriesPoints.of(reversed((await self._execute(stmt)).all()))

    async def points_from(
        self,
        product_sku: str,
        parameter: str,
        position: tuple[datetime, int],
        limit: int,
        *,
        inclusive: bool,
        new: Sequence[CommitRows] = (),
    ) -> SeriesPoints:
        """The first ``limit`` non-voided points of a series from ``position`` on, in series order;
        ``new`` marks the points of these transactions (see ``commit_ids``)."""
        key = tuple_(Measurement.measured_at, Measurement.id)
        stmt = (
            _series_points(product_sku, parameter, new)
            .where(key >= tuple_(*position) if inclusive else key > tuple_(*position))
            .order_by(Measurement.measured_at, Measurement.id)
            .limit(limit)
        )
        return SeriesPoints.of((await self._execute(stmt)).all())

    async def export_chunk(
        self, where: MeasurementSelection, after: MeasurementExportKey | None, limit: int
    ) -> list[ExportedMeasurement]:
        """Up to ``limit`` measurements ``where`` selects after ``after`` (the (parameter,
        measured_at, id) of the last one read), each with its charge's number: one keyset chunk of an
        export, in one query for the measurements and one (``ChargeRepository.numbers``) for the
        numbers of their charges."""
        stmt = select(
            Measurement.id,
            Measurement.charge_id,
            Measurement.product_sku,
            Measurement.parameter,
            Measurement.value,
            Measurement.measured_at,
            Measurement.created_at,
            Measurement.voided_at,
            Measurement.void_reason,
            Measurement.voided_by,
        )
        if where.charge_id is not None:
            stmt = stmt.where(Measurement.charge_id == where.charge_id)
        if where.product_sku is not None:
            stmt = stmt.where(Measurement.product_sku == where.product_sku)
        if where.parameter is not None:
            stmt = stmt.where(Measurement.parameter == where.parameter)
        if where.measured_from is not None:
            stmt = stmt.where(Measurement.measured_at >= where.measured_from)
        if where.measured_to is not None:
            stmt = stmt.where(Measurement.measured_at < where.measured_to)
        if not where.include_voided:
            stmt = stmt.where(Measurement.voided_at.is_(None))
        order = (Measurement.parameter, Measurement.measured_at, Measurement.id)
        if after is not None:
            # Each value bound with its column's type, so that a UTC time is in the stored format on
            # SQLite too.
            key = [literal(value, column.type) for column, value in zip(order, after, strict=True)]
            stmt = stmt.where(tuple_(*order) > tuple_(*key))
        stmt = stmt.order_by(*order).limit(limit)
        while True:
            rows = (await self.session.execute(stmt)).all()
            numbers = await ChargeRepository(self.session).numbers([row.charge_id for row in rows])
            if all(row.charge_id in numbers for row in rows):
                break
            # A charge deleted (with its measurements) between the two reads: read the chunk again,
            # so that a full chunk still means the export goes on.
        return [
            ExportedMeasurement(
                row.id,
                row.charge_id,
                numbers[row.charge_id],
                row.product_sku,
                row.parameter,
                row.value,
                row.measured_at,
                row.created_at,
                row.voided_at,
                row.void_reason,
                row.voided_by,
            )
            for row in rows
        ]

    async def _execute(self, stmt: Select[*tuple[Any, ...]]) -> CursorResult[*tuple[Any, ...]]:
        # Core execution on the session's connection: these reads return plain rows, thousands of
        # them, and skip the ORM's per-row machinery.
        connection = await self.session.connection()
        result: CursorResult[*tuple[Any, ...]] = await connection.execute(stmt)
        return result


def _commit_rows(product_sku: str, parameter: str, commits: Sequence[CommitRows]) -> Subquery:
    """Some transactions' rows of a series, each read by primary key from its first id and stopping
    after its count, so the planner cannot wander into the series' history. Voided rows are filtered
    outside (the ``counts`` column), or a LIMIT might never be met."""
    parts = [
        select(Measurement.id, Measurement.measured_at, Measurement.voided_at.is_(None).label("counts"))
        .where(
            Measurement.id >= first_id,
            Measurement.product_sku == product_sku,
            Measurement.parameter == parameter,
            Measurement.created_at == created_at,
        )
        .order_by(Measurement.id)
        .limit(count)
        .subquery()
        .select()
        for first_id, created_at, count in commits
    ]
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


def _series_points(
    product_sku: str, parameter: str, new: Sequence[CommitRows]
) -> Select[int, int, float, bool]:
    """(id, charge_id, value, new) of a series' non-voided points; ``new`` is true for the rows of the
    given transactions. No time: converting thousands of them would cost more than the rest."""
    is_new = or_(
        false(),
        *(
            and_(Measurement.created_at == created_at, Measurement.id >= first_id)
            for first_id, created_at, _count in new
        ),
    )
    return select(Measurement.id, Measurement.charge_id, Measurement.value, is_new.label("new")).where(
        Measurement.product_sku == product_sku,
        Measurement.parameter == parameter,
        Measurement.voided_at.is_(None),
    )


def _values(row: NewMeasurement, created_at: datetime) -> Mapping[str, Any]:
    return {
        "charge_id": row.charge_id,
        "product_sku": row.product_sku,
        "parameter": row.parameter,
        "value": row.value,
        "measured_at": row.measured_at,
        "created_at": created_at,
    }
