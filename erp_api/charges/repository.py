"""Database access for charges: every query the service needs, and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Row, Select, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from erp_api.charges.models import STATUS_VALUES, Charge, ChargeStatusChange
from erp_api.db import utcnow
from erp_api.security.principal import Principal, current_principal

# Far below both SQLite's and asyncpg's bound-parameter limits, and large enough to keep round trips few.
IN_CHUNK = 1_000

Facet = Literal["product_sku", "line"]
T = TypeVar("T")
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])
# A charge's position in production order.
ProductionKey = tuple[datetime, int]
# What an export of charges holds of each (``exports.columns``), in order.
_EXPORT_COLUMNS = (
    Charge.id,
    Charge.charge_number,
    Charge.product_sku,
    Charge.quantity,
    Charge.unit,
    Charge.line,
    Charge.status,
    Charge.produced_at,
    Charge.created_at,
    Charge.updated_at,
    Charge.version,
)
# The columns the list can be sorted by (each with an index that starts with it: models.Charge).
_SORT_COLUMNS: dict[str, QueryableAttribute[Any]] = {
    "produced_at": Charge.produced_at,
    "charge_number": Charge.charge_number,
    "quantity": Charge.quantity,
}


@dataclass(frozen=True, slots=True)
class ChargeFilter:
    """Which charges a listing selects (its page and its total alike); every set condition holds."""

    statuses: tuple[str, ...] = ()
    product_sku: str | None = None
    line: str | None = None
    number_prefix: str | None = None
    produced_from: datetime | None = None
    produced_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class FacetCount:
    """How many charges of one product (or line) have one status."""

    value: str
    status: str
    count: int


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class ChargeRepository:
    """Queries on the ``charges`` table within the caller's session and transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, charge_id: int, *, for_update: bool = False) -> Charge | None:
        """The charge; ``for_update`` locks it until the transaction ends, so checks made next (its
        alerts, its measurements) still hold at commit: FOR UPDATE on PostgreSQL; on SQLite, which
        has no row locks, the database's write lock."""
        stmt = select(Charge).where(Charge.id == charge_id)
        if for_update:
            stmt = stmt.with_for_update()
            if self.session.get_bind().dialect.name == "sqlite":
                # pysqlite opens a transaction only at the first write, and reads before it see
                # whatever commits meanwhile: a no-op write takes the write lock now.
                await self.session.execute(
                    update(Charge).where(Charge.id == charge_id).values(version=Charge.version),
                    execution_options={"synchronize_session": False},
                )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def exists(self, charge_id: int) -> bool:
        stmt = select(Charge.id).where(Charge.id == charge_id)
        return (await self.session.scalar(stmt)) is not None

    async def states(self, charge_ids: Sequence[int], *, lock: bool = False) -> dict[int, tuple[str, str]]:
        """(product_sku, status) per existing charge; ``lock`` holds them against concurrent changes."""
        stmt = select(Charge.id, Charge.product_sku, Charge.status).where(
            Charge.id.in_(sorted(set(charge_ids)))
        )
        if lock:
            # FOR SHARE: a status change (FOR UPDATE) waits until the caller's transaction ends.
            stmt = stmt.with_for_update(read=True)
        return {row.id: (row.product_sku, row.status) for row in await self.session.execute(stmt)}

    async def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Charge]:
        """One multi-row INSERT ... RETURNING for all rows, in their order."""
        now = utcnow()
        values = [{**row, "created_at": now, "updated_at": now, "version": 1} for row in rows]
        stmt = insert(Charge).values(values).returning(Charge)
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        charges = list(result)
        order = {row["charge_number"]: index for index, row in enumerate(rows)}
        charges.sort(key=lambda charge: order[charge.charge_number])
        return charges

    async def existing_numbers(self, numbers: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(numbers):
            stmt = select(Charge.charge_number).where(Charge.charge_number.in_(chunk))
            found.update((await self.session.scalars(stmt)).all())
        return found

    async def by_numbers(self, numbers: Sequence[str]) -> list[Charge]:
        """Charges with the given numbers, in ceil(n / IN_CHUNK) queries."""
        charges: list[Charge] = []
        for chunk in chunked(numbers):
            stmt = select(Charge).where(Charge.charge_number.in_(chunk))
            charges.extend((await self.session.scalars(stmt)).all())
        return charges

    async def numbers(self, charge_ids: Sequence[int]) -> dict[int, str]:
        """The number of each existing charge of ``charge_ids``, in ceil(n / IN_CHUNK) queries."""
        found: dict[int, str] = {}
        for chunk in chunked(sorted(set(charge_ids))):
            stmt = select(Charge.id, Charge.charge_number).where(Charge.id.in_(chunk))
            found.update({row.id: row.charge_number for row in await self.session.execute(stmt)})
        return found

    async def production_page(
        self, product_sku: str, *, before: ProductionKey | None, limit: int
    ) -> list[tuple[int, datetime, str]]:
        """Up to ``limit`` (id, produced_at, charge_number) of a product's charges, newest first in
        production order (produced_at, id); ``before`` is the (produced_at, id) of the last one read."""
        stmt = select(Charge.id, Charge.produced_at, Charge.charge_number).where(
            Charge.product_sku == product_sku
        )
        if before is not None:
            stmt = stmt.where(tuple_(Charge.produced_at, Charge.id) < _production_key(before))
        stmt = stmt.order_by(Charge.produced_at.desc(), Charge.id.desc()).limit(limit)
        return [(row.id, row.produced_at, row.charge_number) for row in await self.session.execute(stmt)]

    async def export_chunk(
        self, where: ChargeFilter, after: ProductionKey | None, limit: int
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """Up to ``limit`` charges ``where`` selects in production order (produced_at, id), after
        ``after`` (the key of the last one read): one keyset chunk of an export, its columns those of
        ``_EXPORT_COLUMNS``. Every chunk costs the same however deep into the export it is."""
        stmt = self._filtered(select(*_EXPORT_COLUMNS), where)
        if after is not None:
            stmt = stmt.where(tuple_(Charge.produced_at, Charge.id) > _production_key(after))
        stmt = stmt.order_by(Charge.produced_at, Charge.id).limit(limit)
        rows: Sequence[Row[*tuple[Any, ...]]] = (await self.session.execute(stmt)).all()
        return rows

    async def page(
        self,
        where: ChargeFilter,
        *,
        sort: str = "produced_at",
        descending: bool = True,
        after: tuple[Any, int] | None,
        limit: int,
    ) -> list[Charge]:
        """The charges ``where`` selects ordered by (``sort``, id), both ascending or both descending;
        ``after`` is the (sort key, id) of the last row of the previous page. Every sort has an index
        starting with its column (models.Charge); the filters narrow what it returns."""
        column = _SORT_COLUMNS[sort]
        stmt = self._filtered(select(Charge), where)
        if after is not None:
            position = tuple_(column, Charge.id)
            stmt = stmt.where(position < tuple_(*after) if descending else position > tuple_(*after))
        order = (column.desc(), Charge.id.desc()) if descending else (column.asc(), Charge.id.asc())
        stmt = stmt.order_by(*order).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def count_matching(self, where: ChargeFilter) -> int:
        """How many charges ``where`` selects."""
        stmt = self._filtered(select(func.count()).select_from(Charge), where)
        return int((await self.session.scalar(stmt)) or 0)

    async def facet_counts(self, facet: Facet, max_values: int) -> list[FacetCount]:
        """Charges per (product or line, status) in one GROUP BY, for the first ``max_values`` products
        (lines) in code point order, or for ``max_values + 1`` when there are more (the caller's sign
        that the answer is truncated): each value has at most one row per status."""
        value = self._binary(Charge.product_sku if facet == "product_sku" else Charge.line).label("value")
        stmt = (
            select(value, Charge.status, func.count().label("n"))
            .group_by(value, Charge.status)
            .order_by(value, Charge.status)
            .limit((max_values + 1) * len(STATUS_VALUES))
        )
        return [FacetCount(row.value, row.status, int(row.n)) for row in await self.session.execute(stmt)]

    def _filtered(self, stmt: AnySelect, where: ChargeFilter) -> AnySelect:
        if where.statuses:
            stmt = stmt.where(Charge.status.in_(where.statuses))
        if where.product_sku is not None:
            stmt = stmt.where(Charge.product_sku == where.product_sku)
        if where.line is not None:
            stmt = stmt.where(Charge.line == where.line)
        if where.produced_from is not None:
            stmt = stmt.where(Charge.produced_at >= where.produced_from)
        if where.produced_to is not None:
            stmt = stmt.where(Charge.produced_at <= where.produced_to)
        if where.number_prefix:
            # The range (numbers compare by code point: models.Charge) is what the unique index of
            # the number serves; LIKE states the match, its wildcards escaped ("_" is a character of
            # charge numbers, not "any character").
            stmt = stmt.where(
                Charge.charge_number >= where.number_prefix,
                Charge.charge_number < _successor(where.number_prefix),
                Charge.charge_number.startswith(where.number_prefix, autoescape=True),
            )
        return stmt

    def _binary(self, column: QueryableAttribute[str]) -> ColumnElement[str] | QueryableAttribute[str]:
        """``column`` ordered by code point, as SQLite does, whatever PostgreSQL's default collation."""
        if self.session.get_bind().dialect.name == "postgresql":
            return column.collate("C")
        return column

    async def update_if_version(
        self, charge_id: int, version: int, changes: Mapping[str, Any]
    ) -> Charge | None:
        """Apply ``changes`` only if the row is still at ``version``; None when it moved on."""
        stmt = (
            update(Charge)
            .where(Charge.id == charge_id, Charge.version == version)
            .values(**changes, version=Charge.version + 1, updated_at=utcnow())
            .returning(Charge)
        )
        result = await self.session.execute(stmt, execution_options={"populate_existing": True})
        return result.scalar_one_or_none()

    async def record_status_change(
        self,
        charge_id: int,
        from_status: str,
        to_status: str,
        reason: str | None,
        *,
        actor: Principal | None = None,
    ) -> None:
        """Add a step to the charge's history, by ``actor``: the current principal unless given
        (pass e.g. ``Principal(None, "system (auto_hold)", Role.ADMIN)`` for a change the system makes)."""
        who = actor or current_principal()
        self.session.add(
            ChargeStatusChange(
                charge_id=charge_id,
                from_status=from_status,
                to_status=to_status,
                reason=reason,
                actor_key_id=who.key_id,
                actor_name=who.name[:100],
                actor_role=who.role.value,
            )
        )
        await self.session.flush()

    async def status_changes(self, charge_id: int, limit: int) -> list[ChargeStatusChange]:
        """The charge's first ``limit`` status changes, oldest first."""
        stmt = (
            select(ChargeStatusChange)
            .where(ChargeStatusChange.charge_id == charge_id)
            .order_by(ChargeStatusChange.changed_at, ChargeStatusChange.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def delete_if_status(self, charge_id: int, status: str) -> bool:
        stmt = delete(Charge).where(Charge.id == charge_id, Charge.status == status)
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def count(self) -> int:
        return int((await self.session.scalar(select(func.count()).select_from(Charge))) or 0)


def _production_key(key: ProductionKey) -> ColumnElement[Any]:
    """(produced_at, id) as a row value, each bound with its column's type (so that a UTC time is
    in the stored format on SQLite too)."""
    return tuple_(literal(key[0], Charge.produced_at.type), literal(key[1], Charge.id.type))


def _successor(prefix: str) -> str:
    """The least string after every string that starts with ``prefix`` (in code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
