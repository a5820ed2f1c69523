"""Database access for quality alerts: opening them once, reading them, moving them along."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.db import insert_rows
from erp_api.quality.alerts.states import OPEN_STATUSES
from erp_api.quality.models import QualityAlert

# What an export of alerts holds of each (``exports.columns``), in order.
_EXPORT_COLUMNS = (
    QualityAlert.id,
    QualityAlert.charge_id,
    QualityAlert.product_sku,
    QualityAlert.parameter,
    QualityAlert.rule,
    QualityAlert.status,
    QualityAlert.measurement_id,
    QualityAlert.measurement_ids,
    QualityAlert.limits_id,
    QualityAlert.center,
    QualityAlert.sigma,
    QualityAlert.reason,
    QualityAlert.opened_at,
    QualityAlert.updated_at,
    QualityAlert.changed_by,
)


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to open (status ``open``)."""

    charge_id: int
    product_sku: str
    parameter: str
    rule: str
    measurement_id: int
    measurement_ids: list[int]
    limits_id: int | None
    center: float
    sigma: float
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class OpenedAlert:
    id: int
    values: NewAlert


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What a listing selects; None selects anything."""

    statuses: Sequence[str] | None = None
    charge_id: int | None = None
    product_sku: str | None = None
    parameter: str | None = None
    rule: str | None = None


class AlertRepository:
    """Queries on ``quality_alerts`` in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(self, alerts: Sequence[NewAlert]) -> list[OpenedAlert]:
        """Insert the alerts not stored yet (unique per rule and measurement); the ones inserted.

        Inserted in the order given: concurrent checkers that sort alerts the same way never wait
        on each other in a cycle.
        """
        # Skipped rows return nothing, so what was inserted is matched back by (rule, measurement).
        by_key = {(alert.rule, alert.measurement_id): alert for alert in alerts}
        inserted = await insert_rows(
            self.session,
            QualityAlert,
            [_row(alert) for alert in alerts],
            skip_conflicts_on=("rule", "measurement_id"),
            returning=("id", "rule", "measurement_id"),
        )
        opened = [OpenedAlert(row.id, by_key[(row.rule, row.measurement_id)]) for row in inserted]
        opened.sort(key=lambda alert: alert.id)
        return opened

    async def get(self, alert_id: int) -> QualityAlert | None:
        return (
            await self.session.execute(select(QualityAlert).where(QualityAlert.id == alert_id))
        ).scalar_one_or_none()

    async def update_if_status(
        self, alert_id: int, status: str, changes: dict[str, Any]
    ) -> QualityAlert | None:
        """Apply ``changes`` only if the alert is still in ``status``; None when it moved on."""
        stmt = (
            update(QualityAlert)
            .where(QualityAlert.id == alert_id, QualityAlert.status == status)
            .values(**changes)
            .returning(QualityAlert)
        )
        result = await self.session.execute(stmt, execution_options={"populate_existing": True})
        return result.scalar_one_or_none()

    async def page(self, where: AlertFilter, *, before_id: int | None, limit: int) -> list[QualityAlert]:
        """Newest first by id; ``before_id`` is the last row of the previous page."""
        stmt = select(QualityAlert)
        if where.statuses is not None:
            stmt = stmt.where(QualityAlert.status.in_(sorted(set(where.statuses))))
        if where.charge_id is not None:
            stmt = stmt.where(QualityAlert.charge_id == where.charge_id)
        if where.product_sku is not None:
            stmt = stmt.where(QualityAlert.product_sku == where.product_sku)
        if where.parameter is not None:
            stmt = stmt.where(QualityAlert.parameter == where.parameter)
        if where.rule is not None:
            stmt = stmt.where(QualityAlert.rule == where.rule)
        if before_id is not None:
            stmt = stmt.where(QualityAlert.id < before_id)
        stmt = stmt.order_by(QualityAlert.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def export_chunk(
        self, where: AlertFilter, after: int | None, limit: int
    ) -> Sequence[Row[*tuple[Any, ...]]]:
        """Up to ``limit`` alerts ``where`` selects with an id above ``after`` (the last one read), in
        id order (the order they opened in): one keyset chunk of an export, its columns those of
        ``_EXPORT_COLUMNS``."""
        stmt = select(*_EXPORT_COLUMNS)
        if where.statuses is not None:
            stmt = stmt.where(QualityAlert.status.in_(sorted(set(where.statuses))))
        if where.charge_id is not None:
            stmt = stmt.where(QualityAlert.charge_id == where.charge_id)
        if where.product_sku is not None:
            stmt = stmt.where(QualityAlert.product_sku == where.product_sku)
        if where.parameter is not None:
            stmt = stmt.where(QualityAlert.parameter == where.parameter)
        if where.rule is not None:
            stmt = stmt.where(QualityAlert.rule == where.rule)
        if after is not None:
            stmt = stmt.where(QualityAlert.id > after)
        rows: Sequence[Row[*tuple[Any, ...]]] = (
            await self.session.execute(stmt.order_by(QualityAlert.id).limit(limit))
        ).all()
        return rows

    async def open_counts(self) -> dict[str, int]:
        """Open alerts (not resolved or dismissed) per rule, in one query."""
        stmt = (
            select(QualityAlert.rule, func.count())
            .where(QualityAlert.status.in_([status.value for status in OPEN_STATUSES]))
            .group_by(QualityAlert.rule)
        )
        return {rule: int(count) for rule, count in (await self.session.execute(stmt)).all()}


def _row(alert: NewAlert) -> dict[str, Any]:
    return {
        "charge_id": alert.charge_id,
        "product_sku": alert.product_sku,
        "parameter": alert.parameter,
        "rule": alert.rule,
        "measurement_id": alert.measurement_id,
        "measurement_ids": alert.measurement_ids,
        "limits_id": alert.limits_id,
        "center": alert.center,
        "sigma": alert.sigma,
        "status": "open",
        "opened_at": alert.opened_at,
        "updated_at": alert.opened_at,
    }
