"""The capability figures of the summary's rows (``erp_api.quality.spc.capability``), bounded in history.

Where each figure of a row comes from:

- the rollups, over every point of the row: n, mean, std = sigma_overall, min, max, out_of_spec,
  pp, ppk and ppm_expected_overall;
- the row's sample, its latest ``SAMPLE_SIZE`` non-voided points of the range in series order (all
  of them when it has no more; the row's ``sample`` says which, ``kind`` "all" or "latest"):
  sigma_within -- the pooled within-charge standard deviation / c4 when a charge has two or more
  points in the sample, MR-bar / d2 otherwise (``sigma_within_method``) -- hence cp, cpk, their 95 %
  intervals (n = the sample size, the points that estimated sigma_within) and ppm_expected_within;
  and cpm, ppm_observed (the rollups count out-of-spec points, not per side), anderson_darling and
  histogram. The rollups hold no per-charge statistics, so the within-charge sigma cannot come from
  them; the sample keeps the read at most ``SAMPLE_SIZE`` points per row however long the history;
- ``rule_violations_present``: the row's series (per charge: the charge's) has an open alert.

Per charge (``group_by=charge``) a row is the charge's latest ``SAMPLE_SIZE`` points of the
parameter, every figure taken from them (exact unless ``sample.kind`` is "latest"). Those rows come
in keyset pages (``erp_api.pagination``) ordered by (charge_id, parameter), ``limit`` rows a page
(at most ``MAX_SUMMARY_CHARGE_ROWS`` of ``erp_api.quality.schemas``), so a page reads at most
limit x (``SAMPLE_SIZE`` + 1) points whatever the filters. The samples are read by ``erp_api.quality.summaries.samples``.

Cost: the summary per series is not paged; it reads ``SAMPLE_SIZE`` points of every series it
covers (unfiltered: every series with measurements, 15 in the demo data, so 30,000 points). That is
bounded by the number of series, not by history: at the cap a series costs about 1.3 ms on
PostgreSQL and 1.6 on SQLite (reading the sample 0.7 and 1.0; its study 0.55), plus a few ms a
summary for its other statements, whatever the history (``benchmarks.capability_summary``; SQLite's
read is now one joined row per series: slower unloaded, far faster beside a busy event loop, see
``samples``). Cached, it is one cache read.

Why 2,000 points (issue #14 allows the latest 5,000 at most): they estimate sigma_within to about
1.6 % (one standard error; 1 % at 5,000), so Cpk 1.33 gets a 95 % interval of +/- 0.044 against
+/- 0.028 -- twenty times the 100 points a capability study asks for -- and the within figures
describe the recent process; a miss reads 40 % of the points. Measured at 1,000,000 measurements of
a product of three parameters, median (p95) ms: 10.6 (14.8) on SQLite and 10.4 (12.0) on PostgreSQL,
against 19.0 (24.0) and 15.4 (18.3) with 5,000.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.charges.models import Charge
from erp_api.db import read_snapshot
from erp_api.pagination import SortedPosition, decode_sorted_cursor, page_of, rows_to_fetch
from erp_api.quality.alerts.states import OPEN_STATUSES
from erp_api.quality.models import QualityAlert
from erp_api.quality.schemas import PARAMETER_PATTERN, SummaryQuery
from erp_api.quality.spc.capability import (
    WARNINGS,
    CapabilityReport,
    capability_indices,
    capability_report,
    cpk_interval,
    expected_ppm,
)
from erp_api.quality.summaries.query import SeriesAggregate, aggregate_of, specs_of, summarize
from erp_api.quality.summaries.rollup_sql import RAW, SERIES
from erp_api.quality.summaries.samples import NO_SAMPLE, Range, Sample, SampleRead, read_samples
from erp_api.quality.summaries.series_stats import NO_LIMITS, Moments, moving_range_sum

SAMPLE_SIZE = 2_000
ChargeKey = tuple[str, str, int]
"""(product_sku, parameter, charge_id)"""
# The sort a charge page's cursor names; its key is the row's parameter, its id the charge.
CHARGE_SORT = "charge"
_PARAMETER = re.compile(PARAMETER_PATTERN)


async def summary_document(session: AsyncSession, query: SummaryQuery) -> dict[str, Any]:
    """The summary as sent: ``{"items": rows, "next_cursor": ...}``, per series in one document, per
    charge (``query.group_by``) a page of ``query.limit`` rows."""
    if query.group_by == "charge":
        return await _charge_page(session, query)
    return {"items": await _series_rows(session, query), "next_cursor": None}


async def _series_rows(session: AsyncSession, query: SummaryQuery) -> list[dict[str, Any]]:
    aggregates = await summarize(
        session,
        product_sku=query.product_sku,
        parameter=query.parameter,
        measured_from=query.from_,
        measured_to=query.to,
    )
    alerted = await _alerted(session, query)
    reads = [
        ((a.product_sku, a.parameter), SampleRead(a.product_sku, a.parameter, SAMPLE_SIZE))
        for a in aggregates
    ]
    samples = await read_samples(session, "product_sku", reads, (query.from_, query.to))
    rows = []
    for aggregate in aggregates:
        key = (aggregate.product_sku, aggregate.parameter)
        sample = samples.get(key, NO_SAMPLE)
        report = _report(sample, aggregate, key in alerted)
        rows.append(_row(aggregate, None, report, _overall(aggregate, report), len(sample)))
    return rows


async def _charge_page(session: AsyncSession, query: SummaryQuery) -> dict[str, Any]:
    """A page of charge rows ordered by (charge_id, parameter): the charges of the filtered products
    with a non-voided point of the parameter in the range, ``query.limit`` of them, so that a page
    reads at most limit x (``SAMPLE_SIZE`` + 1) points."""
    after = decode_sorted_cursor(query.cursor, CHARGE_SORT, _parameter_of)
    await read_snapshot(session)
    keys = await _charge_keys(session, query, after)
    page = page_of(keys, query.limit, lambda key: SortedPosition(CHARGE_SORT, key[1], key[2]))
    between: Range = (query.from_, query.to)
    limits, targets = await specs_of(session, query.product_sku, query.parameter)
    alerted = await _alerted(session, query)
    # One point beyond the sample says whether the charge has more.
    reads = [(key, SampleRead(key[2], key[1], SAMPLE_SIZE + 1)) for key in page.rows]
    samples = await read_samples(session, "charge_id", reads, between)
    rows = []
    for key in page.rows:
        sample = samples.get(key)
        if not sample:
            # Voided or moved out of the range since the keys were read: not in this snapshot.
            continue
        series = key[:2]
        truncated = len(sample) > SAMPLE_SIZE
        sample = sample.tail(SAMPLE_SIZE)
        values = sample.values.tolist()
        series_limits = limits.get(series, NO_LIMITS)
        moments = Moments.of(values, series_limits)
        aggregate = aggregate_of(
            *series, moments, moving_range_sum(values), series_limits, targets.get(series)
        )
        report = _report(sample, aggregate, (*series, key[2]) in alerted)
        figures = _row(aggregate, key[2], report, {}, len(sample))
        figures["sample"]["kind"] = "latest" if truncated else "all"
        rows.append(figures)
    return {"items": rows, "next_cursor": page.next_cursor}


async def _charge_keys(
    session: AsyncSession, query: SummaryQuery, after: tuple[str, int] | None
) -> list[ChargeKey]:
    """The (product, parameter, charge) of the page's rows and one more, in (charge_id, parameter)
    order after the cursor's position: each charge of a filtered product, with each of the product's
    series in which the charge has a non-voided point in the range (one index probe each)."""
    s, c, m = SERIES.c, Charge.__table__.c, RAW.c
    measured = [m.charge_id == c.id, m.parameter == s.parameter, m.voided_at.is_(None)]
    if query.from_ is not None:
        measured.append(m.measured_at >= query.from_)
    if query.to is not None:
        measured.append(m.measured_at < query.to)
    stmt = (
        select(s.product_sku, s.parameter, c.id)
        .join_from(SERIES, Charge.__table__, c.product_sku == s.product_sku)
        .where(s.n > 0, *_filters(SERIES, query), exists().where(*measured))
        .order_by(c.id, s.parameter)
        .limit(rows_to_fetch(query.limit))
    )
    if after is not None:
        parameter, charge_id = after
        stmt = stmt.where(or_(c.id > charge_id, and_(c.id == charge_id, s.parameter > parameter)))
    return [(row[0], row[1], row[2]) for row in await session.execute(stmt)]


def _parameter_of(text: str) -> str:
    if not _PARAMETER.fullmatch(text):
        raise ValueError("not a parameter")
    return text


def _report(sample: Sample, aggregate: SeriesAggregate, alerted: bool) -> CapabilityReport:
    """The study of the sample, its points grouped by charge."""
    return capability_report(
        subgroups=sample.by_charge(),
        lsl=aggregate.lsl,
        usl=aggregate.usl,
        target=aggregate.target,
        rule_violations_present=alerted,
    )


def _overall(aggregate: SeriesAggregate, report: CapabilityReport) -> dict[str, Any]:
    """The figures of a series row that the rollups give over all its points (see the docstring)."""
    if aggregate.n < 2:
        return {}
    lsl, usl, mean = aggregate.lsl, aggregate.usl, aggregate.mean
    # Cp does not depend on the mean: the report's Cp and its interval stand.
    _, cpk = capability_indices(mean, report.sigma_within, lsl, usl)
    pp, ppk = capability_indices(mean, aggregate.std, lsl, usl)
    raised = {*report.warnings, *(["zero_sigma"] if aggregate.std == 0 else [])}
    warnings = [warning for warning in WARNINGS if warning in raised]
    return {
        "sigma_overall": aggregate.std,
        "cpk": cpk,
        "pp": pp,
        "ppk": ppk,
        "cpk_ci": _json(cpk_interval(cpk, report.n)),
        "ppm_expected_within": _json(expected_ppm(mean, report.sigma_within, lsl, usl)),
        "ppm_expected_overall": _json(expected_ppm(mean, aggregate.std, lsl, usl)),
        "warnings": warnings,
    }


def _row(
    aggregate: SeriesAggregate,
    charge_id: int | None,
    report: CapabilityReport,
    overall: dict[str, Any],
    sample_size: int,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "product_sku": aggregate.product_sku,
        "parameter": aggregate.parameter,
        "charge_id": charge_id,
        "n": aggregate.n,
        "mean": aggregate.mean,
        "std": aggregate.std,
        "min": aggregate.min,
        "max": aggregate.max,
        "lsl": aggregate.lsl,
        "usl": aggregate.usl,
        "target": report.target,
        "out_of_spec": aggregate.out_of_spec,
        "sigma_within": report.sigma_within,
        "sigma_within_method": report.sigma_within_method,
        "sigma_overall": report.sigma_overall,
        "cp": report.cp,
        "cpk": report.cpk,
        "pp": report.pp,
        "ppk": report.ppk,
        "cpm": report.cpm,
        "cp_ci": _json(report.cp_ci),
        "cpk_ci": _json(report.cpk_ci),
        "ppm_observed": _json(report.ppm_observed),
        "ppm_expected_within": _json(report.ppm_expected_within),
        "ppm_expected_overall": _json(report.ppm_expected_overall),
        "anderson_darling": _json(report.anderson_darling),
        "histogram": _json(report.histogram),
        "warnings": list(report.warnings),
        "sample": {
            "kind": "all" if sample_size >= aggregate.n else "latest",
            "size": sample_size,
            "limit": SAMPLE_SIZE,
        },
    }
    row.update(overall)
    return row


def _json(figure: Any) -> dict[str, Any] | None:
    """A figure (a flat dataclass of numbers and lists of numbers) as JSON: ``asdict`` would copy
    every number of a histogram one by one."""
    return None if figure is None else {field.name: getattr(figure, field.name) for field in fields(figure)}


async def _alerted(session: AsyncSession, query: SummaryQuery) -> set[Any]:
    """Series (product, parameter) and charges (product, parameter, charge_id) with an open alert."""
    a = QualityAlert.__table__.c
    stmt = (
        select(a.product_sku, a.parameter, a.charge_id)
        .where(
            a.status.in_([status.value for status in OPEN_STATUSES]), *_filters(QualityAlert.__table__, query)
        )
        .distinct()
    )
    found: set[Any] = set()
    for row in await session.execute(stmt):
        found.update({(row.product_sku, row.parameter), (row.product_sku, row.parameter, row.charge_id)})
    return found


def _filters(table: Any, query: SummaryQuery) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.product_sku is not None:
        filters.append(table.c.product_sku == query.product_sku)
    if query.parameter is not None:
        filters.append(table.c.parameter == query.parameter)
    return filters
