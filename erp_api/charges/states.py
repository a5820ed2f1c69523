"""The charge status state machine: plain domain rules, no framework."""

from __future__ import annotations

from enum import StrEnum


class ChargeStatus(StrEnum):
    PLANNED = "planned"
    IN_PRODUCTION = "in_production"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    REJECTED = "rejected"


TRANSITIONS: dict[ChargeStatus, frozenset[ChargeStatus]] = {
    ChargeStatus.PLANNED: frozenset({ChargeStatus.IN_PRODUCTION}),
    ChargeStatus.IN_PRODUCTION: frozenset(
        {ChargeStatus.QUARANTINED, ChargeStatus.RELEASED, ChargeStatus.REJECTED}
    ),
    ChargeStatus.QUARANTINED: frozenset({ChargeStatus.RELEASED, ChargeStatus.REJECTED}),
    # A released charge can be recalled into quarantine.
    ChargeStatus.RELEASED: frozenset({ChargeStatus.QUARANTINED}),
    ChargeStatus.REJECTED: frozenset(),
}


class IllegalTransition(Exception):
    """The requested status change is not allowed from the current status."""

    def __init__(self, current: ChargeStatus, target: ChargeStatus) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed_targets(current)
        super().__init__(f"a charge cannot go from {current.value} to {target.value}")


def allowed_targets(current: ChargeStatus) -> list[ChargeStatus]:
    """The statuses reachable in one step, in a stable order."""
    return sorted(TRANSITIONS[current], key=list(ChargeStatus).index)


def check_transition(current: ChargeStatus, target: ChargeStatus) -> None:
    """Raise IllegalTransition unless ``current -> target`` is an edge of the state machine."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def is_immutable(status: ChargeStatus) -> bool:
    """A released or rejected charge is a decision on record: its data no longer changes (no edits,
    no new measurements). A released charge can still be recalled into quarantine, which reopens it."""
    return status in (ChargeStatus.RELEASED, ChargeStatus.REJECTED)


def is_deletable(status: ChargeStatus) -> bool:
    """Only a charge that never went into production may be deleted; the rest is history."""
    return status is ChargeStatus.PLANNED
