"""The quality package's answers to the charges package's ``ChargeGuards``: may a charge be
released (no open alerts, no rule check pending), may it be deleted (no measurements).

Wired into ``ChargeService`` by ``erp_api.resources``. Each answer is one indexed query run in the
caller's transaction, after the caller has locked the charge row.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.quality.alerts.states import OPEN_STATUSES
from erp_api.quality.models import Measurement, QualityAlert, RuleCheck

# Enough ids to name in a refusal; a charge with more open alerts than this has a bigger problem.
MAX_OPEN_ALERT_IDS: Final = 100


class QualityChargeGuards:
    """``erp_api.charges.guards.ChargeGuards`` on the quality tables."""

    async def open_alert_ids(self, session: AsyncSession, charge_id: int) -> list[int]:
        """Ids of the charge's open alerts (open, acknowledged, action proposed), ascending, at most
        ``MAX_OPEN_ALERT_IDS``."""
        stmt = (
            select(QualityAlert.id)
            .where(
                QualityAlert.charge_id == charge_id,
                QualityAlert.status.in_([status.value for status in OPEN_STATUSES]),
            )
            .order_by(QualityAlert.id)
            .limit(MAX_OPEN_ALERT_IDS)
        )
        return list((await session.scalars(stmt)).all())

    async def rule_checks_pending(self, session: AsyncSession, charge_id: int) -> bool:
        """Whether an outbox row of the rule check covers a measurement of the charge (a row names
        its series and the first new measurement id; the check looks at that one and later ones)."""
        stmt = select(
            exists().where(
                RuleCheck.product_sku == Measurement.product_sku,
                RuleCheck.parameter == Measurement.parameter,
                Measurement.charge_id == charge_id,
                Measurement.id >= RuleCheck.first_measurement_id,
            )
        )
        return bool(await session.scalar(stmt))

    async def has_measurements(self, session: AsyncSession, charge_id: int) -> bool:
        """Whether the charge has any measurement, voided ones included (they stay on record)."""
        stmt = select(exists().where(Measurement.charge_id == charge_id))
        return bool(await session.scalar(stmt))
