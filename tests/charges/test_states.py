from __future__ import annotations

import pytest

from erp_api.charges.states import (
    ChargeStatus,
    IllegalTransition,
    allowed_targets,
    check_transition,
    is_deletable,
    is_immutable,
)

S = ChargeStatus
LEGAL = {
    (S.PLANNED, S.IN_PRODUCTION),
    (S.IN_PRODUCTION, S.QUARANTINED),
    (S.IN_PRODUCTION, S.RELEASED),
    (S.IN_PRODUCTION, S.REJECTED),
    (S.QUARANTINED, S.RELEASED),
    (S.QUARANTINED, S.REJECTED),
    (S.RELEASED, S.QUARANTINED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_exactly_the_documented_edges_are_allowed(current: ChargeStatus, target: ChargeStatus) -> None:
    if (current, target) in LEGAL:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition) as caught:
            check_transition(current, target)
        assert caught.value.allowed == allowed_targets(current)


def test_rejected_is_final() -> None:
    assert allowed_targets(S.REJECTED) == []


def test_allowed_targets_are_in_life_cycle_order() -> None:
    assert allowed_targets(S.IN_PRODUCTION) == [S.QUARANTINED, S.RELEASED, S.REJECTED]


def test_only_planned_charges_are_deletable() -> None:
    assert [status for status in S if is_deletable(status)] == [S.PLANNED]


def test_only_released_and_rejected_charges_are_immutable() -> None:
    assert [status for status in S if is_immutable(status)] == [S.RELEASED, S.REJECTED]
