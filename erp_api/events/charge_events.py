"""The charge service's ``ChargeChangeRecorder``, as live events: one event per charge changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.events.log import EventType, record_event, record_events

if TYPE_CHECKING:
    from erp_api.charges.notifications import StatusChanged


class ChargeEvents:
    async def created(self, session: AsyncSession, charges: Sequence[dict[str, Any]]) -> None:
        await record_events(
            session,
            [(EventType.CHARGE_CREATED, charge, charge["id"], charge["product_sku"]) for charge in charges],
        )

    async def updated(self, session: AsyncSession, charge: dict[str, Any], changed: Sequence[str]) -> None:
        await record_event(
            session,
            EventType.CHARGE_UPDATED,
            {"charge": charge, "changed": list(changed)},
            charge_id=charge["id"],
            product_sku=charge["product_sku"],
        )

    async def status_changed(self, session: AsyncSession, change: StatusChanged) -> None:
        await record_event(
            session,
            EventType.CHARGE_STATUS_CHANGED,
            change.payload(),
            charge_id=change.charge_id,
            product_sku=change.product_sku,
        )
