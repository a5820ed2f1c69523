"""Who hears of a charge's status change (and of its other changes), without the charges package
importing them.

The charge service receives a ``StatusChangeNotifier`` from the composition root
(``erp_api.resources`` passes the webhooks' ``ChargeStatusWebhooks``). It is called twice per
change: ``stage`` inside the transaction that makes the change, so the notification commits or rolls
back with it (an outbox), then ``send`` after the commit, to hand what was staged over for delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.security.principal import Principal


@dataclass(frozen=True)
class StatusChanged:
    """One step of a charge's life cycle, as it is told to the outside world."""

    charge_id: int
    charge_number: str
    product_sku: str
    from_status: str
    to_status: str
    reason: str | None
    changed_at: datetime
    actor: Principal

    def payload(self) -> dict[str, Any]:
        """The event's data: the charge, and the change in the shape of the charge's history."""
        return {
            "charge_id": self.charge_id,
            "charge_number": self.charge_number,
            "product_sku": self.product_sku,
            "from": self.from_status,
            "to": self.to_status,
            "reason": self.reason,
            "changed_at": self.changed_at,
            "by": {"name": self.actor.name, "role": self.actor.role.value, "key_id": self.actor.key_id},
        }


class StatusChangeNotifier(Protocol):
    async def stage(self, session: AsyncSession, change: StatusChanged) -> Sequence[int]:
        """Record the notification in ``session``'s transaction; handles for ``send``."""
        ...

    async def send(self, staged: Sequence[int]) -> None:
        """After the commit: hand the staged notifications over for delivery. Never raises for an
        outage (what it cannot hand over now is delivered later)."""
        ...


class ChargeChangeRecorder(Protocol):
    """Records every change of a charge in the transaction that makes it (the live event log,
    ``erp_api.events.charge_events``); the charges are given as the API shows them."""

    async def created(self, session: AsyncSession, charges: Sequence[dict[str, Any]]) -> None: ...

    async def updated(
        self, session: AsyncSession, charge: dict[str, Any], changed: Sequence[str]
    ) -> None: ...

    async def status_changed(self, session: AsyncSession, change: StatusChanged) -> None: ...
