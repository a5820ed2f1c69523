"""The life cycle of a quality alert: plain domain rules, no framework.

An alert opens when a run rule fires on a new measurement. A quality manager acknowledges it,
proposes an action, and finally resolves or dismisses it; resolved and dismissed are final. An
alert counts as open (and holds its charge's release back) until it is resolved or dismissed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ACTION_PROPOSED = "action_proposed"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


TRANSITIONS: Final[dict[AlertStatus, frozenset[AlertStatus]]] = {
    AlertStatus.OPEN: frozenset(
        {AlertStatus.ACKNOWLEDGED, AlertStatus.ACTION_PROPOSED, AlertStatus.RESOLVED, AlertStatus.DISMISSED}
    ),
    AlertStatus.ACKNOWLEDGED: frozenset(
        {AlertStatus.ACTION_PROPOSED, AlertStatus.RESOLVED, AlertStatus.DISMISSED}
    ),
    AlertStatus.ACTION_PROPOSED: frozenset({AlertStatus.RESOLVED, AlertStatus.DISMISSED}),
    AlertStatus.RESOLVED: frozenset(),
    AlertStatus.DISMISSED: frozenset(),
}

OPEN_STATUSES: Final = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.ACTION_PROPOSED)
"""The statuses of an alert that still needs a decision."""


class IllegalAlertTransition(Exception):
    """The requested status change is not allowed from the alert's current status."""

    def __init__(self, current: AlertStatus, target: AlertStatus) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed_targets(current)
        super().__init__(f"an alert cannot go from {current.value} to {target.value}")


def allowed_targets(current: AlertStatus) -> list[AlertStatus]:
    """The statuses reachable in one step, in a stable order."""
    return sorted(TRANSITIONS[current], key=list(AlertStatus).index)


def check_transition(current: AlertStatus, target: AlertStatus) -> None:
    """Raise IllegalAlertTransition unless ``current -> target`` is an edge of the life cycle."""
    if target not in TRANSITIONS[current]:
        raise IllegalAlertTransition(current, target)


def is_open(status: AlertStatus) -> bool:
    return status in OPEN_STATUSES
