"""Turn ``var/bench/*.json`` into ``docs/BENCHMARKS.md`` with PNG plots under ``docs/bench/``."""

from __future__ import annotations

import platform
import re
import sys
import timeit
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from benchmarks.common import RESULTS, ROOT, machine

DOCS = ROOT / "docs"
PLOTS = DOCS / "bench"
ORDER = ["cache", "spc", "http", "observability", "quality", "quality_loop", "analysis", "scaling"]
PACKAGES = ["starlette", "uvicorn", "sqlalchemy", "asyncpg", "redis", "celery", "orjson", "numpy"]


def _plot(topic: str, name: str, series: dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    path = PLOTS / f"{topic}-{slug}.png"
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    labels, values = list(series), list(series.values())
    bars = ax.bar(labels, values, color="#3b6ea5")
    ax.bar_label(bars, labels=[f"{v:,.1f}" if v < 100 else f"{v:,.0f}" for v in values], fontsize=8)
    ax.set_title(name)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(table: dict[str, Any]) -> list[str]:
    lines = [f"**{table['caption']}**", "", "| " + " | ".join(table["columns"]) + " |"]
    lines.append("|" + "---|" * len(table["columns"]))
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
    return [*lines, ""]


def _budgets(budgets: list[dict[str, Any]]) -> list[str]:
    """Each figure beside its budget, and whether it meets it (``better``: "higher" or "lower")."""
    rows = []
    for entry in budgets:
        higher = entry["better"] == "higher"
        meets = entry["measured"] >= entry["budget"] if higher else entry["measured"] <= entry["budget"]
        rows.append(
            [
                entry["figure"],
                f"{entry['measured']:,}",
                f"{'>=' if higher else '<='} {entry['budget']:,}",
                "meets" if meets else "misses",
            ]
        )
    return _table({"caption": "Budgets", "columns": ["figure", "measured", "budget", ""], "rows": rows})


def yardstick_us() -> float:
    """µs for one fixed pure-Python loop: machines (or runs of the same model) differ by it."""
    timer = timeit.Timer("sum(range(1000))")
    loops = 2000
    return min(timer.repeat(repeat=7, number=loops)) / loops * 1e6


def build(command: str) -> str:
    results = {path.stem: orjson.loads(path.read_bytes()) for path in sorted(RESULTS.glob("*.json"))}
    topics = [t for t in ORDER if t in results] + sorted(set(results) - set(ORDER))
    info = machine()
    versions = ", ".join(f"{name} {version(name)}" for name in PACKAGES)
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Do not edit by hand.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['system']}; a yardstick for its speed:"
        f" {yardstick_us():.1f} µs for a fixed pure-Python loop (sum of 1,000 ints; best of 7)",
        f"- Python {platform.python_version()}; {versions}",
        "- Each benchmark measures its configurations side by side in one run and quotes medians;",
        "  ratios compare numbers from the same run. Absolute numbers vary between machines and runs:",
        "  the same code's absolute figures move with the yardstick, its ratios much less.",
        "",
    ]
    for topic in topics:
        result = results[topic]
        lines += [f"## {result.get('title', topic)}", ""]
        if result.get("budgets"):
            lines += _budgets(result["budgets"])
        for table in result.get("tables", []):
            lines += _table(table)
        for name, series in (result.get("series") or {}).items():
            if series:
                plot = _plot(topic, name, {str(k): float(v) for k, v in series.items()})
                lines += [f"![{name}](bench/{plot.name})", ""]
        lines += [f"- {note}" for note in result.get("notes", [])]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    command = " ".join(sys.argv[1:]) or "make bench"
    (DOCS / "BENCHMARKS.md").write_text(build(command))
    print(f"wrote {DOCS / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
