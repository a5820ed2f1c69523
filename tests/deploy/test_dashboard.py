"""The Grafana dashboard: job and instance variables, and every query scoped by them."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tests.deploy.conftest import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "erp-api.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    return loaded


def variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard()["templating"]["list"]}


def targets() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_dashboard_has_job_and_instance_variables() -> None:
    found = variables()
    assert {"datasource", "job", "worker_job", "instance"} <= set(found)
    for name in ("job", "worker_job", "instance"):
        assert found[name]["type"] == "query"
        assert found[name]["datasource"]["uid"] == "${datasource}"
    assert found["instance"]["includeAll"] is True and found["instance"]["multi"] is True
    assert found["instance"]["allValue"] == ".*"
    assert "$job" in found["instance"]["definition"] and "$worker_job" in found["instance"]["definition"]


def test_every_query_selects_by_the_job_and_instance_variables() -> None:
    unscoped = []
    for title, expr in targets():
        selectors = re.findall(r"\{([^}]*)\}", expr)
        scoped = selectors and all(
            re.search(r'job=~"[^"]*\$(worker_)?job', selector) and 'instance=~"$instance"' in selector
            for selector in selectors
        )
        if not scoped:
            unscoped.append((title, expr))
    assert unscoped == []


def test_no_job_name_is_hard_coded() -> None:
    assert [expr for _, expr in targets() if re.search(r'job=~?"erp', expr)] == []


def test_panels_have_unique_ids_and_titles() -> None:
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    titles = [panel["title"] for panel in panels if panel["type"] != "row"]
    assert len(set(titles)) == len(titles)


def test_process_metrics_are_shown() -> None:
    exprs = " ".join(expr for _, expr in targets())
    assert "process_cpu_seconds_total" in exprs and "process_resident_memory_bytes" in exprs
