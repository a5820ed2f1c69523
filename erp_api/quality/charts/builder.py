"""From loaded data to the engine's charts and back to the API's body and pictures (no I/O).

Which builder draws which ``chart`` of ``ControlChartQuery``:

- imr: :func:`~erp_api.quality.spc.individuals.individuals_charts` (X and MR);
- ewma, cusum: :mod:`~erp_api.quality.spc.timeweighted` with the query's lambda and L, k and h;
- xbar_r, xbar_s: :mod:`~erp_api.quality.spc.subgroups` (sigma R-bar / d2 or S-bar / c4);
- p, np: defectives (inspected, nonconforming); c, u: defects (units, nonconformities), by
  :mod:`~erp_api.quality.spc.attributes`. The np chart needs one sample size and the c chart one
  number of units: for samples of several sizes the p and u charts have per-point limits.

A baseline (the series' stored phase I limits) replaces the centre and sigma of the variable charts.
Data the chosen chart cannot take (unequal sizes for np or c, subgroups beyond the X-bar/R table) is
a :class:`ChartDataError`, which the API answers with a 422 naming the chart to use instead.

The body lists the engine's :class:`~erp_api.quality.spc.chart_result.Chart` objects as they are:
they are JSON-safe dataclasses that orjson writes directly (the fast path for 10,000 subgroups).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from erp_api.quality.charts.data import Sample
from erp_api.quality.schemas import ControlChartQuery
from erp_api.quality.spc.attributes import c_chart, np_chart, p_chart, u_chart
from erp_api.quality.spc.chart import Baseline
from erp_api.quality.spc.chart_result import Chart
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.subgroups import xbar_r_charts, xbar_s_charts
from erp_api.quality.spc.timeweighted import cusum_charts, ewma_chart

LimitsSource = Literal["stored", "computed"]
CHART_NAMES = {
    "imr": "individuals and moving range",
    "xbar_r": "X\u0304 and R",
    "xbar_s": "X\u0304 and S",
    "ewma": "EWMA",
    "cusum": "CUSUM",
    "p": "p (fraction nonconforming)",
    "np": "np (number nonconforming)",
    "c": "c (nonconformities)",
    "u": "u (nonconformities per unit)",
}
_STYLE_ELEMENT = re.compile(r"<style>(.*?)</style>", re.DOTALL)


class ChartDataError(ValueError):
    """The data cannot be drawn on the chart asked for (the message says which chart can)."""


def individual_charts(
    query: ControlChartQuery, values: Sequence[float], labels: Sequence[str], baseline: Baseline | None
) -> list[Chart]:
    """The imr, ewma or cusum charts of individual values in time order."""
    if query.chart == "ewma":
        return ewma_chart(values, lam=query.ewma_lambda, L=query.ewma_width, labels=labels, baseline=baseline)
    if query.chart == "cusum":
        return cusum_charts(values, k=query.k, h=query.h, labels=labels, baseline=baseline)
    return individuals_charts(values, labels=labels, baseline=baseline, rules=query.rules)


def subgroup_charts(
    query: ControlChartQuery,
    subgroups: Sequence[Sequence[float]],
    labels: Sequence[str],
    baseline: Baseline | None,
) -> list[Chart]:
    """The X-bar/R or X-bar/S charts of subgroups in time order."""
    build = xbar_r_charts if query.chart == "xbar_r" else xbar_s_charts
    try:
        return build(subgroups, labels=labels, baseline=baseline, rules=query.rules)
    except ValueError as error:
        # Stored values are finite and subgroups hold at least two: what is left is a subgroup beyond
        # the d2/d3 table of X-bar/R, which X-bar/S takes.
        hint = ": use chart=xbar_s, or a subgroup_size of at most 25" if query.chart == "xbar_r" else ""
        raise ChartDataError(f"{error}{hint}") from None


def attribute_charts(query: ControlChartQuery, samples: Sequence[Sample]) -> list[Chart]:
    """The p, np, c or u chart of inspection samples in time order."""
    labels = [sample.charge_number for sample in samples]
    counts = [sample.found for sample in samples]
    sizes = [sample.size for sample in samples]
    distinct = sorted(set(sizes))
    if query.chart in ("np", "c") and len(distinct) > 1:
        other, what = ("p", "items inspected") if query.chart == "np" else ("u", "units inspected")
        raise ChartDataError(
            f"chart={query.chart} needs samples of one size, and these have {len(distinct)} different "
            f"numbers of {what} ({distinct[0]} to {distinct[-1]}): use chart={other}, whose limits follow "
            "each sample's size"
        )
    if query.chart == "p":
        return p_chart(counts, sizes, labels=labels, rules=query.rules)
    if query.chart == "np":
        return np_chart(counts, distinct[0] if distinct else 1, labels=labels, rules=query.rules)
    if query.chart == "c":
        return c_chart(counts, labels=labels, rules=query.rules)
    return u_chart(counts, sizes, labels=labels, rules=query.rules)


def chart_document(
    query: ControlChartQuery,
    product_sku: str,
    charts: list[Chart],
    *,
    limits: tuple[LimitsSource, int | None] = ("computed", None),
) -> dict[str, Any]:
    """The body of ``GET /quality/control-chart`` (``ControlChartOut``) without the legacy fields."""
    first = charts[0] if charts else None
    by_charge = query.chart in ("xbar_r", "xbar_s") and query.subgroup_size is None
    return {
        "chart": query.chart,
        "product_sku": product_sku,
        "charge_id": query.charge_id,
        "parameter": query.parameter,
        "characteristic": query.characteristic,
        "rules": query.rules,
        "subgroups": None
        if query.chart not in ("xbar_r", "xbar_s")
        else ("charge" if by_charge else "fixed"),
        "subgroup_size": query.subgroup_size,
        "limits_source": limits[0],
        "limits_id": limits[1],
        "sigma": None if first is None else first.process_sigma,
        "sigma_method": None if first is None else first.sigma_method,
        "charts": charts,
    }


def chart_title(query: ControlChartQuery, product_sku: str) -> str:
    """The picture's title: what is charted, of what, and how subgroups are formed."""
    subject = query.parameter or query.characteristic or ""
    where = f"charge {query.charge_id} ({product_sku})" if query.charge_id is not None else product_sku
    title = f"{CHART_NAMES[query.chart]} chart of {subject}, {where}"
    if query.chart in ("xbar_r", "xbar_s"):
        title += (
            ", one subgroup per charge"
            if query.subgroup_size is None
            else f", subgroups of {query.subgroup_size}"
        )
    return title


def capability_title(product_sku: str, parameter: str, shown: int, total: int) -> str:
    """The capability picture's caption: which values the study used."""
    which = f"all {shown:,}" if shown == total else f"the latest {shown:,} of {total:,}"
    return f"Capability of {parameter}, {product_sku}: {which} non-voided values"


def svg_style_sources(document: bytes) -> str:
    """The CSP ``style-src`` that allows exactly the ``<style>`` elements of an SVG document.

    The API's policy (``default-src 'none'``) blocks every style sheet, and a chart's lines are drawn
    by its style sheet; a hash admits that sheet and nothing else (no inline ``style`` attributes).
    """
    sheets = _STYLE_ELEMENT.findall(document.decode("utf-8"))
    return " ".join(_sha256_source(sheet) for sheet in dict.fromkeys(sheets)) or "'none'"


@lru_cache(maxsize=16)
def _sha256_source(sheet: str) -> str:
    digest = base64.b64encode(hashlib.sha256(sheet.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"
