"""The shipped monitoring files: valid for Prometheus, and querying only metrics the service exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.observability.conftest import ClientFactory
from tests.services import REQUIRE_SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "erp-api.json"
BUILTIN = {"up"}  # set by Prometheus itself for every target
KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}, and ERP_REQUIRE_SERVICES=1 makes it mandatory", pytrace=False)
        pytest.skip(reason)
    return path


def run_promtool(*args: str) -> None:
    result = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or label names)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = LABEL_LIST.sub("", expr)
    names = set()
    for match in IDENTIFIER.finditer(expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group().lower() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, list[str]]:
    dashboard: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }


async def exported_names(build_client: ClientFactory) -> set[str]:
    """Every series name a scrape of the service can contain, from its # TYPE lines."""
    async with build_client() as client:
        text = (await client.get("/metrics")).text
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"} if kind == "histogram" else {name}
    return names


def test_promql_parser_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job="x",le="0.15"}[5m])))'
        ' / on (route) group_left b_total offset 5m > 1e3 and absent(c{d="e(f)"}) or up'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "up"}


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    run_promtool("check", "rules", str(RULES))
    run_promtool("test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))


def test_scrape_configuration_passes_promtool_check() -> None:
    run_promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))


def test_rules_cover_the_agreed_alerts() -> None:
    assert set(rule_expressions()) == {
        "ErpApiHighErrorRatio",
        "ErpApiSlowResponses",
        "ErpApiLowCacheHitRatio",
        "ErpTaskFailureRatio",
        "ErpQueueBacklog",
        "ErpWorkerDown",
        "ErpTargetDown",
        "QualityAlertsOpen",
    }


async def test_rules_and_dashboard_query_only_exported_metrics(build_client: ClientFactory) -> None:
    exported = await exported_names(build_client) | BUILTIN
    queried = {f"alert {name}": metric_names(expr) for name, expr in rule_expressions().items()}
    for title, exprs in dashboard_expressions().items():
        queried[f"panel {title}"] = set().union(*(metric_names(expr) for expr in exprs))
    assert all(queried.values()), [where for where, names in queried.items() if not names]
    unknown = {where: names - exported for where, names in queried.items() if names - exported}
    assert unknown == {}


def test_dashboard_shows_every_part_of_the_service() -> None:
    queried = set().union(
        *(metric_names(expr) for exprs in dashboard_expressions().values() for expr in exprs)
    )
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
        "http_requests_in_progress",
        "db_pool_connections_in_use",
        "cache_requests_total",
        "measurements_ingested_total",
        "ingest_batch_size_bucket",
        "ingest_queue_depth",
        "celery_queue_length",
        "celery_task_queue_wait_seconds_bucket",
        "celery_tasks_total",
        "celery_task_runtime_seconds_bucket",
        "celery_workers",
        "erp_quality_alerts_open",
        "erp_quality_alerts_opened_total",
        "erp_quality_rule_checks_pending",
        "up",
    } <= queried
