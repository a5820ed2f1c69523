"""Which events a role sees, and which a stream's filters select.

Policy: every role sees the charge, measurement and alert events (they tell what any viewer can
read through the API); ``analysis.finished`` needs ``quality_manager`` (starting analyses and acting
on their findings is the quality manager's, as the routes declare).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from erp_api.events.log import EventType
from erp_api.security.roles import Role

REQUIRED_ROLE: Final[dict[EventType, Role]] = {
    **{event_type: Role.VIEWER for event_type in EventType},
    EventType.ANALYSIS_FINISHED: Role.QUALITY_MANAGER,
}


def visible_types(role: Role) -> frozenset[str]:
    """The event types a key with ``role`` is sent."""
    return frozenset(
        event_type.value for event_type, needed in REQUIRED_ROLE.items() if role.includes(needed)
    )


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What one stream is sent: its types (already cut down to the role's), a charge, a product."""

    types: frozenset[str]
    charge_id: int | None = None
    product_sku: str | None = None

    def matches(self, event_type: str, charge_id: int | None, product_sku: str | None, payload: Any) -> bool:
        if event_type not in self.types:
            return False
        if self.charge_id is not None and not _names(self.charge_id, charge_id, payload, "charge_ids"):
            return False
        return self.product_sku is None or _names(self.product_sku, product_sku, payload, "product_skus")


def _names(wanted: object, column: object, payload: Any, plural: str) -> bool:
    """An event names a charge (product) in its column, or, when one commit concerns several (a
    ``measurements.added``), in its payload's list."""
    if column is not None:
        return column == wanted
    listed: Collection[object] = payload.get(plural, ()) if isinstance(payload, dict) else ()
    return wanted in listed
