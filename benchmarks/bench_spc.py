"""SPC engine speed: rule sets on 100,000 points against the 200 ms target, per rule numpy vs Python,
chart SVGs of 1,000 points against their 20 ms budget, and the X-bar/R chart of 10,000 subgroups built and
serialized as the API sends it against its 50 ms budget, and the uncached capability summary (every
capability figure) against 10,000 and 1,000,000 measurements of one product on SQLite and PostgreSQL
against its 50 ms budget.

Run with ``python -m benchmarks.bench_spc``; writes ``var/bench/spc.json``. The summary alone, at
other sizes: ``python -m benchmarks.bench_spc summary [ROWS ...]`` (prints, writes nothing).
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.capability_summary import SUMMARY_SIZES, summary_budgets, summary_results, summary_table
from erp_api.quality.charts.builder import chart_document
from erp_api.quality.schemas import ControlChartQuery
from erp_api.quality.spc.capability import capability_report
from erp_api.quality.spc.individuals import individuals_charts
from erp_api.quality.spc.rules import RULE_SETS, RuleName, find_violations, rule_mask, rule_masks
from erp_api.quality.spc.series import analyse_series, spc_report
from erp_api.quality.spc.subgroups import xbar_r_charts
from erp_api.quality.spc.svg import capability_svg, control_chart_svg

TARGET_MS = 200.0
SVG_TARGET_MS = 20.0
SUBGROUP_TARGET_MS = 50.0
N_SUBGROUPS = 10_000
N_LARGE = 100_000
N_SMALL = 1_000
OUTPUT = Path("var/bench/spc.json")


def median_ms(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up: first-call allocations and imports are not what we measure
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def python_rule(rule: RuleName, x: list[float], c: float, s: float) -> list[int]:
    """Single-pass pure-Python version of a rule (running counters), the baseline numpy must beat."""
    lines = {k: (c - k * s, c + k * s) for k in (0, 1, 2, 3)}
    above = {k: [v > lines[k][1] for v in x] for k in (0, 1, 2, 3)}
    below = {k: [v < lines[k][0] for v in x] for k in (0, 1, 2, 3)}

    def runs(mask: list[bool], m: int) -> list[bool]:
        out, length = [], 0
        for flag in mask:
            length = length + 1 if flag else 0
            out.append(length >= m)
        return out

    def k_of_m(mask: list[bool], k: int, m: int) -> list[bool]:
        return [mask[i] and i >= m - 1 and sum(mask[i - m + 1 : i + 1]) >= k for i in range(len(mask))]

    def either(a: list[bool], b: list[bool]) -> list[int]:
        return [i for i, (p, q) in enumerate(zip(a, b, strict=True)) if p or q]

    steps = [(b > a) - (b < a) for a, b in itertools.pairwise(x)]
    if rule in ("N1", "WE1"):
        return either(above[3], below[3])
    if rule in ("N2", "WE4"):
        m = 9 if rule == "N2" else 8
        return either(runs(above[0], m), runs(below[0], m))
    if rule == "N3":
        return [i + 1 for i in either(runs([d == 1 for d in steps], 5), runs([d == -1 for d in steps], 5))]
    if rule == "N4":
        flips = [a != 0 and b == -a for a, b in itertools.pairwise(steps)]
        return [i + 2 for i, flag in enumerate(runs(flips, 12)) if flag]
    if rule in ("N5", "WE2"):
        return either(k_of_m(above[2], 2, 3), k_of_m(below[2], 2, 3))
    if rule in ("N6", "WE3"):
        return either(k_of_m(above[1], 4, 5), k_of_m(below[1], 4, 5))
    outside = [p or q for p, q in zip(above[1], below[1], strict=True)]
    if rule == "N7":
        return [i for i, flag in enumerate(runs([not o for o in outside], 15)) if flag]
    last_above = last_below = -(10**9)
    flagged = []
    for i, run in enumerate(runs(outside, 8)):
        last_above = i if above[1][i] else last_above
        last_below = i if below[1][i] else last_below
        if run and min(last_above, last_below) >= i - 7:
            flagged.append(i)
    return flagged


def svg_table() -> dict[str, Any]:
    """Chart building and SVG drawing for 1,000 points (1,000 subgroups of 5) against the 20 ms budget."""
    rng = np.random.default_rng(20240602)
    values = rng.normal(10.0, 1.0, N_SMALL)
    values[400:430] += 2.0  # a shift, so violations are drawn too
    subgroups = rng.normal(10.0, 1.0, (N_SMALL, 5)).tolist()
    charts = individuals_charts(values)
    report = capability_report(values, lsl=6.0, usl=14.0, target=10.0)
    cases = [
        ("SVG of X + MR charts (charts built)", lambda: control_chart_svg(charts, title="X", lsl=6, usl=14)),
        ("X + MR charts built and drawn", lambda: control_chart_svg(individuals_charts(values), title="X")),
        (
            "X-bar/R of 1,000 subgroups built and drawn",
            lambda: control_chart_svg(xbar_r_charts(subgroups), title="R"),
        ),
        ("capability report", lambda: capability_report(values, lsl=6.0, usl=14.0, target=10.0)),
        ("SVG of the capability picture", lambda: capability_svg(report, title="capability")),
    ]
    rows: list[list[object]] = []
    for label, action in cases:
        ms = median_ms(action, 50)
        verdict = f"{SVG_TARGET_MS / ms:.1f}x under" if ms <= SVG_TARGET_MS else "OVER"
        rows.append([label, f"{N_SMALL:,}", round(ms, 3), verdict])
    return {
        "caption": f"Median wall time of 50 runs; budget: a chart SVG of 1,000 points in {SVG_TARGET_MS:.0f} ms",
        "columns": ["case", "points", "median ms", f"vs {SVG_TARGET_MS:.0f} ms budget"],
        "rows": rows,
    }


def subgroup_table() -> dict[str, Any]:
    """X-bar/R of 10,000 subgroups of 5: the engine, then the response body as the API serializes it."""
    rng = np.random.default_rng(20240603)
    subgroups = rng.normal(10.0, 1.0, (N_SUBGROUPS, 5)).tolist()
    labels = [f"CH-2026-{i:06d}" for i in range(N_SUBGROUPS)]
    query = ControlChartQuery(product_sku="PUMP-A", parameter="diameter_mm", chart="xbar_r")

    def body() -> bytes:
        charts = xbar_r_charts(subgroups, labels=labels)
        return orjson.dumps(chart_document(query, "PUMP-A", charts))

    cases = [
        ("X-bar/R charts built", lambda: xbar_r_charts(subgroups, labels=labels)),
        ("X-bar/R charts built and serialized (the response body)", body),
    ]
    rows: list[list[object]] = []
    for label, action in cases:
        ms = median_ms(action, 15)
        verdict = f"{SUBGROUP_TARGET_MS / ms:.1f}x under" if ms <= SUBGROUP_TARGET_MS else "OVER"
        rows.append([label, f"{N_SUBGROUPS:,}", round(ms, 3), verdict])
    return {
        "caption": (
            f"Median wall time of 15 runs; budget: X-bar/R over {N_SUBGROUPS:,} subgroups of 5 in "
            f"{SUBGROUP_TARGET_MS:.0f} ms of server time (engine + serialization, {len(body()):,} bytes)"
        ),
        "columns": ["case", "subgroups", "median ms", f"vs {SUBGROUP_TARGET_MS:.0f} ms budget"],
        "rows": rows,
    }


def _print(table: dict[str, Any]) -> None:
    print(table["caption"])
    print("  " + " | ".join(table["columns"]))
    for row in table["rows"]:
        print("  " + " | ".join(str(cell) for cell in row))


def main() -> None:
    rng = np.random.default_rng(20240601)
    normal = rng.normal(10.0, 1.0, N_LARGE)
    # Worst case for building the violation list: every point outside 1 sigma, alternating sides,
    # so N4 and N8 flag nearly every point (~200,000 violations).
    dense = np.where(np.arange(N_LARGE) % 2 == 0, 11.5, 8.5)
    small = normal[:N_SMALL].tolist()

    cases = [
        ("Nelson N1-N8, violations list", N_LARGE, lambda: find_violations(normal, 10.0, 1.0, "nelson"), 15),
        ("Nelson N1-N8, masks only", N_LARGE, lambda: rule_masks(normal, 10.0, 1.0, "nelson"), 15),
        ("Nelson, every point flagged (dense)", N_LARGE, lambda: find_violations(dense, 10.0, 1.0), 9),
        (
            "Western Electric WE1-WE4, violations list",
            N_LARGE,
            lambda: find_violations(normal, 10.0, 1.0, "western_electric"),
            15,
        ),
        ("analyse_series: limits + Nelson + capability", N_LARGE, lambda: analyse_series(normal), 9),
        ("analyse_series: limits + Nelson + capability", N_SMALL, lambda: analyse_series(small), 200),
        ("spc_report dict, spec limits", N_SMALL, lambda: spc_report("p", small, lsl=6, usl=14), 200),
    ]
    summary_rows: list[list[object]] = []
    for label, size, action, repeats in cases:
        ms = median_ms(action, repeats)
        verdict = f"{TARGET_MS / ms:.0f}x under" if ms <= TARGET_MS else "OVER"
        summary_rows.append([label, f"{size:,}", round(ms, 3), verdict])

    values = normal.tolist()
    rule_rows: list[list[object]] = []
    per_rule: dict[str, float] = {}
    for rule in [*RULE_SETS["nelson"], "WE4"]:
        fast = np.flatnonzero(rule_mask(rule, normal, 10.0, 1.0)).tolist()
        assert fast == python_rule(rule, values, 10.0, 1.0), rule  # same answer before timing
        numpy_ms = median_ms(partial(rule_mask, rule, normal, 10.0, 1.0), 15)
        python_ms = median_ms(partial(python_rule, rule, values, 10.0, 1.0), 3)
        per_rule[rule] = round(numpy_ms, 3)
        rule_rows.append([rule, round(numpy_ms, 3), round(python_ms, 1), f"{python_ms / numpy_ms:.0f}x"])

    nelson_ms = summary_rows[0][2]
    tables: list[dict[str, Any]] = [
        {
            "caption": f"Median wall time; target: all rules on 100,000 points in {TARGET_MS:.0f} ms",
            "columns": ["case", "points", "median ms", "vs 200 ms target"],
            "rows": summary_rows,
        },
        {
            "caption": "Per rule on 100,000 points: numpy masks vs a single-pass pure-Python loop",
            "columns": ["rule", "numpy median ms", "pure Python median ms", "speed-up"],
            "rows": rule_rows,
        },
        svg_table(),
        subgroup_table(),
    ]
    svg_ms, subgroup_ms = tables[2]["rows"][1][2], tables[3]["rows"][1][2]
    summaries = summary_results()
    tables.append(summary_table(summaries))
    report = {
        "title": "SPC engine: Nelson / Western Electric rules and chart analysis",
        "tables": tables,
        "notes": [
            f"All Nelson rules with the sorted violation list on 100,000 normal points: {nelson_ms} ms "
            f"(target {TARGET_MS:.0f} ms).",
            "Data: seeded normal(10, 1); rules run against centre 10, sigma 1. The dense case alternates "
            "11.5 / 8.5 so N4 and N8 flag almost every point.",
            "Every rule is a few numpy passes (comparisons and cumulative-sum window counts); the "
            "pure-Python column is a one-pass loop with running counters, checked to give identical flags.",
            "Medians of 15 runs (9 for the dense and 100,000-point analyse cases, 200 for 1,000 points, "
            "3 for pure Python), after one warm-up run.",
        ],
        "series": {"numpy ms per rule, 100,000 points": per_rule},
        "budgets": [
            {
                "figure": f"X-bar/R over {N_SUBGROUPS:,} subgroups, server time (median ms)",
                "measured": subgroup_ms,
                "budget": SUBGROUP_TARGET_MS,
                "better": "lower",
            },
            {
                "figure": f"SVG of X + MR charts of {N_SMALL:,} points, built and drawn (median ms)",
                "measured": svg_ms,
                "budget": SVG_TARGET_MS,
                "better": "lower",
            },
            *summary_budgets(summaries),
        ],
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    for table in tables:
        _print(table)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["summary"]:
        measured = summary_results(tuple(int(n) for n in sys.argv[2:]) or SUMMARY_SIZES)
        _print(summary_table(measured))
        print(orjson.dumps(summary_budgets(measured), option=orjson.OPT_INDENT_2).decode())
    else:
        main()
