"""RULE_WINDOWS: each rule's verdict on a point depends on exactly that many points ending at it.

The on-ingest check reads only ``RULE_LOOKBACK`` points before a new one, and an alert names the
window's points, so both must agree with what the engine actually looks at.
"""

from __future__ import annotations

import numpy as np
import pytest

from erp_api.quality.spc.rules import RULE_LOOKBACK, RULE_WINDOWS, RuleName, rule_mask

CENTER, SIGMA = 0.0, 1.0


def series(seed: int, n: int = 400) -> list[float]:
    """Data that makes every rule fire somewhere: noise, shifts, trends, alternation, quiet stretches."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.normal(0, 1, 60),
        np.array([3.5, 0.1, -3.4]),
        rng.normal(1.5, 0.5, 40),
        np.linspace(-2, 2, 20),
        np.tile([1.5, -1.5], 15),
        rng.normal(0, 0.3, 40),
        rng.choice([-2.5, 2.5, 0.0], 60),
        rng.normal(-1.2, 0.4, 40),
        np.round(rng.normal(0, 1, 110), 1),
    ]
    return [float(value) for value in np.concatenate(parts)[:n]]


@pytest.mark.parametrize("rule", list(RULE_WINDOWS))
@pytest.mark.parametrize("seed", range(3))
def test_a_points_verdict_depends_only_on_its_window(rule: RuleName, seed: int) -> None:
    values = series(seed)
    m = RULE_WINDOWS[rule]
    full = rule_mask(rule, values, CENTER, SIGMA)
    assert full.any(), f"the data should make {rule} fire"
    for index in range(m - 1, len(values)):
        alone = rule_mask(rule, values[index - m + 1 : index + 1], CENTER, SIGMA)
        assert alone[-1] == full[index], (rule, index)


@pytest.mark.parametrize("rule", list(RULE_WINDOWS))
def test_no_rule_fires_with_fewer_points_than_its_window(rule: RuleName) -> None:
    m = RULE_WINDOWS[rule]
    for seed in range(3):
        values = series(seed)
        for start in range(0, len(values) - m, 7):
            assert not rule_mask(rule, values[start : start + m - 1], CENTER, SIGMA).any()


def test_the_lookback_covers_the_longest_window() -> None:
    assert RULE_LOOKBACK == max(RULE_WINDOWS.values()) - 1 == 14
