"""The events a webhook can subscribe to: the one list, checked on subscribe and on publish."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventType(StrEnum):
    ALERT_OPENED = "alert.opened"
    """A rule fired on a measurement and a quality alert was raised."""
    ALERT_CHANGED = "alert.changed"
    """A quality alert moved to another status."""
    CHARGE_STATUS_CHANGED = "charge.status_changed"
    """A charge moved to another status (by a person, or by the system's automatic hold)."""


EVENT_TYPES: Final = tuple(EventType)
