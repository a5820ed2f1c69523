"""The chart every builder returns (:class:`Chart` of :class:`Point`) and the rule checks they share.

A builder (individuals, subgroups, attributes, EWMA, CUSUM) returns a list of charts, e.g. X-bar then
R. Everything in them is JSON-safe: floats are finite or ``None`` (never NaN), lists not arrays, so
``dataclasses.asdict`` gives the API body.

Which rules run where:

- Beyond the limits (N1 in the Nelson set, WE1 in Western Electric) runs on every Shewhart chart,
  against each point's own limits: a point is flagged when it lies strictly above its UCL or strictly
  below its LCL. It is the only rule on the dispersion charts (MR, R, S): their statistics are skewed,
  and the zone rules assume a symmetric distribution.
- The whole rule set runs on a location chart (individuals, X-bar, and attribute charts whose limits
  are constant) against its centre and the sigma of the plotted statistic (``Chart.zone_sigma``),
  exactly as :mod:`erp_api.quality.spc.rules` defines the rules.
- X-bar with varying subgroup sizes: each point has its own sigma s_i = sigma / sqrt(n_i). The zone
  rules (N5-N8, WE2-WE3) then see the standardized values z_i = (x_i - centre) / s_i against centre 0
  and sigma 1; N1 / WE1 compare with the point's limits as above; the rules that use no zone (N2, N3,
  N4, WE4) see the plotted values themselves.
- Attribute charts with varying limits (p, u with varying sample sizes): beyond the limits and the
  rules that use no zone; the zone rules are skipped, since the plotted statistic's distribution
  changes from point to point.
- Limits of zero width (sigma 0, e.g. every subgroup constant) flag nothing, like the zone rules of
  :mod:`~erp_api.quality.spc.rules` with s = 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from erp_api.quality.spc.chart import BoolArray, FloatArray
from erp_api.quality.spc.rules import RULE_SETS, RuleName, RuleSet, rule_masks

ChartName = Literal[
    "individuals", "mr", "xbar", "r", "s", "p", "np", "c", "u", "ewma", "cusum_upper", "cusum_lower"
]
SigmaMethod = Literal["baseline", "mr_bar", "r_bar", "s_bar", "binomial", "poisson"]

_LARGEST = float(np.finfo(np.float64).max)
BEYOND_LIMITS: Mapping[RuleSet, RuleName] = {"nelson": "N1", "western_electric": "WE1"}
# The rules that look at no zone line, only at the centre or at the order of the points.
_ZONE_FREE: frozenset[RuleName] = frozenset({"N2", "N3", "N4", "WE4"})


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which makes building the
# thousands of points of a long chart several times slower.
@dataclass(slots=True)
class Point:
    """One plotted point: its statistic, the lines at that point, and the rule ids it breaks."""

    label: str
    value: float | None
    n: int | None
    center: float | None
    ucl: float | None
    lcl: float | None
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chart:
    """One control chart.

    ``center``/``ucl``/``lcl`` are set when the line is the same at every point and ``None`` when it
    varies (then read it from the points) or is undefined. ``zone_sigma`` is the sigma of the plotted
    statistic when the zone rules apply with constant zones (lines at centre +/- 1 and 2 zone sigmas),
    else ``None``. ``process_sigma`` is the sigma of single measurements the lines come from, and
    ``sigma_method`` where it came from. ``rules`` lists the rule ids checked on this chart;
    ``parameters`` holds chart settings (EWMA lambda and L, CUSUM k and h, the decision interval H).
    """

    name: ChartName
    center: float | None
    ucl: float | None
    lcl: float | None
    zone_sigma: float | None
    process_sigma: float | None
    sigma_method: SigmaMethod | None
    rules: list[str]
    points: list[Point]
    parameters: dict[str, float] = field(default_factory=dict)


def point_labels(labels: Sequence[str] | None, count: int) -> list[str]:
    """``labels`` as a list of strings, or "1".."count" when not given; their number must match."""
    if labels is None:
        return [str(i + 1) for i in range(count)]
    if len(labels) != count:
        raise ValueError(f"got {len(labels)} labels for {count} points")
    return [str(label) for label in labels]


def as_list(values: FloatArray | float | None, count: int) -> list[float | None]:
    """A per-point list from an array or one value; NaN and infinity become ``None``."""
    if values is None:
        return [None] * count
    array = np.broadcast_to(np.asarray(values, dtype=np.float64), (count,))
    if np.isfinite(array).all():
        listed: list[float | None] = array.tolist()
        return listed
    return [value if math.isfinite(value) else None for value in array.tolist()]


def constant(values: FloatArray) -> float | None:
    """The common value of ``values`` when they are all equal and finite, else ``None``."""
    if values.size == 0 or not np.isfinite(values).all() or values.min() != values.max():
        return None
    return float(values[0])


def beyond_limits(values: FloatArray, ucl: FloatArray, lcl: FloatArray) -> BoolArray:
    """x > UCL or x < LCL, strictly, point by point; limits of zero width (UCL == LCL) flag nothing."""
    with np.errstate(invalid="ignore"):
        flagged: BoolArray = ((values > ucl) | (values < lcl)) & (ucl > lcl)
    return flagged


def dispersion_flags(
    values: FloatArray, ucl: FloatArray, lcl: FloatArray, rules: RuleSet
) -> dict[str, BoolArray]:
    """The one rule of an MR, R or S chart: beyond its limits."""
    check_rule_set(rules)
    return {BEYOND_LIMITS[rules]: beyond_limits(values, ucl, lcl)}


def location_flags(
    values: FloatArray,
    center: float,
    sigmas: FloatArray,
    *,
    ucl: FloatArray,
    lcl: FloatArray,
    rules: RuleSet,
    zones: bool = True,
) -> dict[str, BoolArray]:
    """Every rule of ``rules`` on a location chart whose plotted statistic has sigma ``sigmas[i]``.

    Constant sigma: the rules exactly as :func:`~erp_api.quality.spc.rules.rule_masks` defines them.
    Varying sigma: see the module docstring (standardized zones, own limits for N1). ``zones=False``
    keeps only beyond-the-limits and the zone-free rules (attribute charts with varying limits).
    """
    check_rule_set(rules)
    # A statistic that overflowed (a mean of values near the float limit) is beyond every finite line;
    # clipped to the largest float it keeps that verdict and the rule engine accepts it.
    values = np.clip(values, -_LARGEST, _LARGEST)
    names = RULE_SETS[rules]
    sigma = constant(sigmas)
    beyond = BEYOND_LIMITS[rules]
    if sigma is not None and zones:
        return {name: mask for name, mask in rule_masks(values, center, sigma, rules).items()}
    plain = rule_masks(values, center, 0.0, rules)
    standardized: Mapping[RuleName, BoolArray] = {}
    positive = bool(sigmas.size) and bool((sigmas > 0).all())
    if zones and positive:
        with np.errstate(over="ignore"):
            z = np.clip((values - center) / sigmas, -_LARGEST, _LARGEST)
        standardized = rule_masks(z, 0.0, 1.0, rules)
    result: dict[str, BoolArray] = {}
    for name in names:
        if name == beyond:
            result[name] = beyond_limits(values, ucl, lcl)
        elif name in _ZONE_FREE:
            result[name] = plain[name]
        elif name in standardized:
            result[name] = standardized[name]
    return result


def limit_lines(center: float, sigmas: FloatArray, k: int = 3) -> tuple[FloatArray, FloatArray]:
    """(lower, upper) lines at ``k`` sigmas for each point: the arithmetic of ``zone_line``, elementwise."""
    with np.errstate(over="ignore", invalid="ignore"):
        return center - k * sigmas, center + k * sigmas


def assemble_chart(
    name: ChartName,
    points: list[Point],
    *,
    zone_sigma: float | None,
    process_sigma: float | None,
    sigma_method: SigmaMethod | None,
    rules: list[str],
    parameters: dict[str, float] | None = None,
) -> Chart:
    """A chart whose centre, UCL and LCL are the points' own when every point has the same line."""
    return Chart(
        name=name,
        center=_common([point.center for point in points]),
        ucl=_common([point.ucl for point in points]),
        lcl=_common([point.lcl for point in points]),
        zone_sigma=zone_sigma,
        process_sigma=process_sigma,
        sigma_method=sigma_method,
        rules=rules,
        points=points,
        # A setting that overflowed (e.g. H = h sigma for a huge sigma) is left out rather than sent as NaN.
        parameters={name: value for name, value in (parameters or {}).items() if math.isfinite(value)},
    )


def _common(values: list[float | None]) -> float | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def build_points(
    labels: list[str],
    values: FloatArray,
    *,
    sizes: Sequence[int | None],
    centers: FloatArray | float | None,
    ucls: FloatArray | float | None,
    lcls: FloatArray | float | None,
    flags: Mapping[str, BoolArray],
) -> list[Point]:
    """One :class:`Point` per value; each lists the rules flagging it, in the order of ``flags``."""
    count = values.size
    hits: list[list[str]] = [[] for _ in range(count)]
    for rule, mask in flags.items():
        for index in np.flatnonzero(mask).tolist():
            hits[index].append(rule)
    columns = zip(
        labels,
        as_list(values, count),
        sizes,
        as_list(centers, count),
        as_list(ucls, count),
        as_list(lcls, count),
        hits,
        strict=True,
    )
    return [Point(*column) for column in columns]


def check_rule_set(rules: RuleSet) -> None:
    """Raise ``ValueError`` unless ``rules`` names a rule set."""
    if rules not in RULE_SETS:
        raise ValueError(f"unknown SPC rule set {rules!r}")
