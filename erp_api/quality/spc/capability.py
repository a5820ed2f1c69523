"""Process capability (Cp, Cpk) and performance (Pp, Ppk) indices of a series against spec limits.

Cp = (USL - LSL) / (6 s) and Cpk = min(USL - mean, mean - LSL) / (3 s) with the within-subgroup
(short-term) s = MR-bar / 1.128, the individuals chart's sigma; Pp and Ppk are the same with the sample
standard deviation (n - 1 in the denominator). They always describe the data itself, never a baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from erp_api.quality.spc.chart import D2, FloatArray, Values, as_series, finite_or_none, moving_range_mean


@dataclass(frozen=True, slots=True)
class Capability:
    """The four indices; each is ``None`` where it is undefined."""

    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


def _check_spec_limits(lsl: float | None, usl: float | None) -> None:
    for name, limit in (("lsl", lsl), ("usl", usl)):
        if limit is not None and not math.isfinite(limit):
            raise ValueError(f"{name} must be finite")
    if lsl is not None and usl is not None and lsl >= usl:
        raise ValueError("lsl must be below usl")


def _sample_std(series: FloatArray, mr_bar: float) -> float | None:
    # Only constant data has MR-bar = 0; its std must be exactly 0, which np.std can miss by rounding.
    if mr_bar == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        return finite_or_none(float(np.std(series, ddof=1)))


def capability_indices(
    mean: float, sigma: float | None, lsl: float | None, usl: float | None
) -> tuple[float | None, float | None]:
    """(potential, actual) index for one sigma: (Cp, Cpk) or (Pp, Ppk).

    Potential needs both limits; actual is the one-sided index when only one limit is given. Both are
    ``None`` when sigma is missing or 0, or when no limit is given.
    """
    if sigma is None or sigma <= 0:
        return None, None
    potential = None if lsl is None or usl is None else (usl - lsl) / (6 * sigma)
    sides = [(usl - mean) / (3 * sigma)] if usl is not None else []
    if lsl is not None:
        sides.append((mean - lsl) / (3 * sigma))
    actual = min(sides) if sides else None
    return finite_or_none(potential), finite_or_none(actual)


def process_capability(values: Values, lsl: float | None = None, usl: float | None = None) -> Capability:
    """Cp, Cpk, Pp, Ppk of ``values`` against the spec limits.

    One limit: Cp and Pp are ``None``, Cpk and Ppk are the one-sided indices ((USL - mean)/3 sigma or
    (mean - LSL)/3 sigma). All four are ``None`` with no limits or fewer than two points; a pair is ``None``
    when its sigma is 0 (constant data). Raises ``ValueError`` for non-finite input or LSL >= USL.
    """
    _check_spec_limits(lsl, usl)
    series = as_series(values)
    mr_bar = moving_range_mean(series)
    if mr_bar is None:
        return Capability(cp=None, cpk=None, pp=None, ppk=None)
    with np.errstate(over="ignore"):
        mean = float(np.mean(series))
    sigma_within = mr_bar / D2
    cp, cpk = capability_indices(mean, sigma_within, lsl, usl)
    pp, ppk = capability_indices(mean, _sample_std(series, mr_bar), lsl, usl)
    return Capability(cp=cp, cpk=cpk, pp=pp, ppk=ppk)
