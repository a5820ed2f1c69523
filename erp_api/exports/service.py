"""What an export holds: its columns, and its rows as chunks read one keyset query at a time.

Each chunk is read by the repository of the package that owns the table (``ChargeRepository``,
``MeasurementRepository``, ``AlertRepository``: their ``export_chunk``), ``LIMIT``-ed and continued
after the key of the previous chunk's last row, in an order an index serves, so every chunk costs the
same however deep into the export it is, and nothing is held between chunks: no connection, no
transaction, no server-side cursor.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.repository import ChargeFilter, ChargeRepository, ProductionKey
from erp_api.exports.columns import ALERT_COLUMNS, CHARGE_COLUMNS, MEASUREMENT_COLUMNS, AnyRow, Column
from erp_api.exports.schemas import AlertExportQuery, ChargeExportQuery, MeasurementExportQuery
from erp_api.quality.alerts.repository import AlertFilter, AlertRepository
from erp_api.quality.repository import MeasurementExportKey, MeasurementRepository, MeasurementSelection

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
        where = ChargeFilter(
            statuses=tuple(status.value for status in query.status or ()),
            product_sku=query.product_sku,
            line=query.line,
            number_prefix=query.number_prefix,
            produced_from=query.produced_from,
            produced_to=query.produced_to,
        )

        def read(
            session: AsyncSession, after: ProductionKey | None, limit: int
        ) -> Awaitable[Sequence[AnyRow]]:
            return ChargeRepository(session).export_chunk(where, after, limit)

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
            session: AsyncSession, after: MeasurementExportKey | None, limit: int
        ) -> Awaitable[Sequence[AnyRow]]:
            return MeasurementRepository(session).export_chunk(where, after, limit)

        return Export(
            "measurements",
            MEASUREMENT_COLUMNS,
            lambda: self._chunks(read, lambda row: (row.parameter, row.measured_at, row.id)),
        )

    def alerts(self, query: AlertExportQuery) -> Export:
        where = AlertFilter(
            # No status given: any status (an empty selection would select nothing).
            statuses=tuple(status.value for status in query.status) if query.status else None,
            charge_id=query.charge_id,
            product_sku=query.product_sku,
            parameter=query.parameter,
            rule=query.rule,
        )

        def read(session: AsyncSession, after: int | None, limit: int) -> Awaitable[Sequence[AnyRow]]:
            return AlertRepository(session).export_chunk(where, after, limit)

        return Export("alerts", ALERT_COLUMNS, lambda: self._chunks(read, lambda row: row.id))

    async def _chunks(
        self,
        read: Callable[[AsyncSession, K | None, int], Awaitable[Sequence[AnyRow]]],
        key: Callable[[AnyRow], K],
    ) -> Chunks:
        after: K | None = None
        while True:
            async with self._sessions() as session:
                rows = await read(session, after, self._chunk_rows)
            if rows:
                yield rows
            if len(rows) < self._chunk_rows:
                return
            after = key(rows[-1])
