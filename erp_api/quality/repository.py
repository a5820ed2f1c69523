"""Database access for quality specifications and measurements: the queries the services need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.models import Charge
from erp_api.quality.models import Measurement, QualitySpec
from erp_api.quality.records import NewMeasurement, StoredMeasurement

# Rows per statement of a bulk insert: within SQLite's and asyncpg's bound-parameter limits for
# the multi-row INSERT, and bounding the memory of one COPY buffer.
BULK_CHUNK = 5_000
RECORD_COLUMNS = ("charge_id", "product_sku", "parameter", "value", "measured_at", "created_at")
# One row for a bulk insert, in RECORD_COLUMNS order: plain tuples, the cheapest thing to build per row.
MeasurementRecord = tuple[int, str, str, float, datetime, datetime]


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

    async def limits(self, product_sku: str) -> dict[str, tuple[float | None, float | None]]:
        """(lsl, usl) per parameter of one product."""
        stmt = select(QualitySpec.parameter, QualitySpec.lsl, QualitySpec.usl).where(
            QualitySpec.product_sku == product_sku
        )
        return {row.parameter: (row.lsl, row.usl) for row in await self.session.execute(stmt)}


class MeasurementRepository:
    """Queries on ``measurements`` (and the charge facts they depend on) in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def charge_states(
        self, charge_ids: Sequence[int], *, lock: bool = False
    ) -> dict[int, tuple[str, str]]:
        """(product_sku, status) per existing charge; ``lock`` holds them against concurrent changes."""
        stmt = select(Charge.id, Charge.product_sku, Charge.status).where(
            Charge.id.in_(sorted(set(charge_ids)))
        )
        if lock:
            # FOR SHARE: a status change (FOR UPDATE) waits until the measurements are committed.
            stmt = stmt.with_for_update(read=True)
        return {row.id: (row.product_sku, row.status) for row in await self.session.execute(stmt)}

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

    async def parameters(self, charge_id: int) -> list[str]:
        stmt = select(Measurement.parameter).where(Measurement.charge_id == charge_id).distinct()
        return sorted((await self.session.scalars(stmt)).all())

    async def latest_series(
        self, charge_id: int, parameter: str, limit: int
    ) -> tuple[list[Row[int, float, datetime, int]], int]:
        """The last ``limit`` points (id, value, measured_at) of a series in time order, and its length.

        The length comes from the same statement, so it always counts the points returned.
        """
        stmt = (
            select(
                Measurement.id,
                Measurement.value,
                Measurement.measured_at,
                func.count().over().label("total"),
            )
            .where(Measurement.charge_id == charge_id, Measurement.parameter == parameter)
            .order_by(Measurement.measured_at.desc(), Measurement.id.desc())
            .limit(limit)
        )
        rows = list((await self.session.execute(stmt)).all())
        rows.reverse()
        return rows, int(rows[0].total) if rows else 0


def _values(row: NewMeasurement, created_at: datetime) -> Mapping[str, Any]:
    return {
        "charge_id": row.charge_id,
        "product_sku": row.product_sku,
        "parameter": row.parameter,
        "value": row.value,
        "measured_at": row.measured_at,
        "created_at": created_at,
    }
