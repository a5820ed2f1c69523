"""What the charges package asks of quality before a status change or a delete, without importing it.

Charges sit below quality (quality reads charges, never the reverse), yet releasing or deleting a
charge depends on its quality data. The charge service therefore receives a ``ChargeGuards``: the
composition root (``erp_api.resources``) passes the quality package's implementation
(``erp_api.quality.charge_guards``); tests may pass a fake.

Both questions are asked inside the service's transaction, with the charge row already locked
(``ChargeRepository.get(for_update=True)``), so the answer still holds when the change commits.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class ChargeGuards(Protocol):
    async def open_alert_ids(self, session: AsyncSession, charge_id: int) -> list[int]:
        """Ids of the charge's quality alerts not yet resolved or dismissed, ascending (a bounded
        number: enough to name them in a refusal)."""
        ...

    async def rule_checks_pending(self, session: AsyncSession, charge_id: int) -> bool:
        """Whether measurements of the charge still wait for their on-ingest rule check: an alert
        they may open is not known yet, so a release must wait for it."""
        ...

    async def has_measurements(self, session: AsyncSession, charge_id: int) -> bool:
        """Whether any measurement (voided or not) belongs to the charge."""
        ...
