"""What an export holds: its columns, and its rows as chunks read one keyset query at a time."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.exports.columns import ALERT_COLUMNS, CHARGE_COLUMNS, MEASUREMENT_COLUMNS, Column
from erp_api.exports.repository import (
    AlertSelection,
    AnyRow,
    ChargeKey,
    ChargeSelection,
    ExportRepository,
    MeasurementKey,
    MeasurementSelection,
)
from erp_api.exports.schemas import AlertExportQuery, ChargeExportQuery, MeasurementExportQuery

K = TypeVar("K")
Chunks = AsyncGenerator[Sequence[AnyRow], None]


@dataclass(frozen=True, slots=True)
class Export:
    """One export: its name (``charges``), its columns in order, and ``chunks()``, which reads its
    rows in order, a chunk per query, when iterated (nothing is read before)."""

    name: str
    columns: tuple[Column, ...]
    chunks: Callable[[], Chunks]


class ExportService:
    """Exports of charges, measurements and alerts, read in chunks of ``chunk_rows``.

    Each chunk is read in a session and transaction of its own that ends before the chunk is handed
    on, so a slow client holds no connection and no snapshot. The export is therefore no snapshot
    either: a row written while it runs is in it if its key comes after the chunks already read.
    Every row is read once, in key order; the keys are immutable (a measurement's time, an alert's
    id) except a charge's production time, which a correction may move past the export's position.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, chunk_rows: int) -> None:
        self._sessions = sessions
        self._chunk_rows = chunk_rows

    def charges(self, query: ChargeExportQuery) -> Export:
        where = ChargeSelection(
            statuses=tuple(status.value for status in query.status or ()),
            product_sku=query.product_sku,
            line=query.line,
            number_prefix=query.number_prefix,
            produced_from=query.produced_from,
            produced_to=query.produced_to,
        )

        def read(
            repository: ExportRepository, after: ChargeKey | None, limit: int
        ) -> Awaitable[Sequence[AnyRow]]:
            return repository.charges(where, after, limit)

        return Export(
            "charges",
            CHARGE_COLUMNS,
            lambda: self._chunks(read, lambda row: (row.produced_at, row.id)),
        )

    def measurements(self, query: MeasurementExportQuery) -> Export:
        where = MeasurementSelection(
            charge_id=query.charge_id,
            product_sku=query.product_sku,
            parameter=query.parameter,
            measured_from=query.measured_from,
            measured_to=query.measured_to,
            include_voided=query.include_voided,
        )

        def read(
            repository: ExportRepository, after: MeasurementKey | None, limit: int
        ) -> Awaitable[Sequence[AnyRow]]:
            return repository.measurements(where, after, limit)

        return Export(
            "measurements",
            MEASUREMENT_COLUMNS,
            lambda: self._chunks(read, lambda row: (row.parameter, row.measured_at, row.id)),
        )

    def alerts(self, query: AlertExportQuery) -> Export:
        where = AlertSelection(
            statuses=tuple(status.value for status in query.status or ()),
            charge_id=query.charge_id,
            product_sku=query.product_sku,
            parameter=query.parameter,
            rule=query.rule,
        )

        def read(repository: ExportRepository, after: int | None, limit: int) -> Awaitable[Sequence[AnyRow]]:
            return repository.alerts(where, after, limit)

        return Export("alerts", ALERT_COLUMNS, lambda: self._chunks(read, lambda row: row.id))

    async def _chunks(
        self,
        read: Callable[[ExportRepository, K | None, int], Awaitable[Sequence[AnyRow]]],
        key: Callable[[AnyRow], K],
    ) -> Chunks:
        after: K | None = None
        while True:
            async with self._sessions() as session:
                rows = await read(ExportRepository(session), after, self._chunk_rows)
            if rows:
                yield rows
            if len(rows) < self._chunk_rows:
                return
            after = key(rows[-1])
