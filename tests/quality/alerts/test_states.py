from __future__ import annotations

import pytest

from erp_api.quality.alerts.states import (
    OPEN_STATUSES,
    AlertStatus,
    IllegalAlertTransition,
    allowed_targets,
    check_transition,
    is_open,
)
from erp_api.quality.models import ALERT_STATUS_VALUES

S = AlertStatus
LEGAL = {
    (S.OPEN, S.ACKNOWLEDGED),
    (S.OPEN, S.ACTION_PROPOSED),
    (S.OPEN, S.RESOLVED),
    (S.OPEN, S.DISMISSED),
    (S.ACKNOWLEDGED, S.ACTION_PROPOSED),
    (S.ACKNOWLEDGED, S.RESOLVED),
    (S.ACKNOWLEDGED, S.DISMISSED),
    (S.ACTION_PROPOSED, S.RESOLVED),
    (S.ACTION_PROPOSED, S.DISMISSED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_exactly_the_documented_edges_are_allowed(current: AlertStatus, target: AlertStatus) -> None:
    if (current, target) in LEGAL:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalAlertTransition) as caught:
            check_transition(current, target)
        assert caught.value.allowed == allowed_targets(current)


def test_resolved_and_dismissed_are_final() -> None:
    assert allowed_targets(S.RESOLVED) == []
    assert allowed_targets(S.DISMISSED) == []


def test_allowed_targets_are_in_life_cycle_order() -> None:
    assert allowed_targets(S.OPEN) == [S.ACKNOWLEDGED, S.ACTION_PROPOSED, S.RESOLVED, S.DISMISSED]


def test_an_alert_is_open_until_resolved_or_dismissed() -> None:
    assert [status for status in S if is_open(status)] == [S.OPEN, S.ACKNOWLEDGED, S.ACTION_PROPOSED]
    assert list(OPEN_STATUSES) == [S.OPEN, S.ACKNOWLEDGED, S.ACTION_PROPOSED]


def test_the_statuses_are_the_ones_the_table_allows() -> None:
    assert tuple(status.value for status in S) == ALERT_STATUS_VALUES
