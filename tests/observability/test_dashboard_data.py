"""No panel of the dashboard says "No data" on a healthy system.

A real worker runs a real analysis for the API; the series of two scrapes of each, before and after
that traffic, feed Prometheus' own evaluator (``promtool test rules``), which answers every query of
the dashboard with the job and instance variables set to what a deployment has.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import free_port, running_server, running_worker, tasks_worker_command
from tests.analyses.helpers import measured_charge, submit, wait_for
from tests.conftest import TEST_ADMIN_KEY, bearer
from tests.deploy.conftest import DEPLOY, require_tool
from tests.observability.conftest import Samples, parse_samples

pytestmark = pytest.mark.slow

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "erp-api.json"
API, WORKER = ("erp-api", "api:8000"), ("erp-worker", "worker:9808")
VARIABLES = {"$__rate_interval": "5m", "$worker_job": WORKER[0], "$job": API[0], "$instance": ".*"}
# Points one minute apart: the first scrape until minute 4, the second from minute 5 on; evaluated at
# minute 9, a 5-minute rate sees the traffic between the two.
BEFORE, AFTER, EVAL_MINUTE = 5, 5, 9
# One returned series in promtool's answer: {label="value", ...} 1.5E+00 (values may hold braces).
GOT = re.compile(r'\{((?:\w+="(?:[^"\\]|\\.)*"(?:, )?)*)\} (\S+?)(?:, |$)')


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            queries.append((panel["title"], expr))
    return queries


def series_line(name: str, labels: frozenset[tuple[str, str]], job: tuple[str, str]) -> str:
    all_labels = {**dict(labels), "job": job[0], "instance": job[1]}
    body = ",".join(
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in sorted(all_labels.items())
    )
    return f"{name}{{{body}}}"


def input_series(before: Samples, after: Samples, job: tuple[str, str]) -> Iterator[dict[str, str]]:
    for (name, labels), value in after.items():
        first = before.get((name, labels), 0.0)
        points = [first] * BEFORE + [value] * AFTER
        if not any(math.isnan(point) for point in points):
            yield {"series": series_line(name, labels, job), "values": " ".join(repr(p) for p in points)}


def with_data(promtool: str, folder: Path, series: list[dict[str, str]]) -> dict[int, list[float]]:
    """The values each query returns, by query index; a query missing here returned nothing."""
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                # Expecting nothing makes promtool print what each query did return.
                "promql_expr_test": [
                    {
                        "expr": f'label_replace({expr}, "panel_query", "{index}", "", "")',
                        "eval_time": f"{EVAL_MINUTE}m",
                        "exp_samples": [],
                    }
                    for index, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ],
    }
    path = folder / "dashboard.test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    # Only the answers of the queries: anything else (a query that does not parse) fails here.
    unexpected = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not re.match(r"\s*(Unit Testing:|FAILED:|expr: |exp: nil|got: )", line)
    ]
    assert unexpected == [], result.stdout + result.stderr
    returned: dict[int, list[float]] = {}
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip().startswith("got:"):
            for labels, value in GOT.findall(line):
                index = int(re.search(r'panel_query="(\d+)"', labels).group(1))  # type: ignore[union-attr]
                returned.setdefault(index, []).append(float(value))
    return returned


@pytest.mark.redis
async def test_every_panel_has_data_on_a_healthy_system(
    tmp_path: Path, redis_broker: tuple[str, str]
) -> None:
    promtool = require_tool("promtool", "prometheus")
    metrics_port = free_port()
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3",
        "broker_url": redis_broker[0],
        "broker_key_prefix": redis_broker[1],
        "cache_backend": "memory",
        "log_level": "INFO",
        "bootstrap_admin_key": TEST_ADMIN_KEY,
        "worker_metrics_port": metrics_port,
    }
    settings = load_settings(**values)
    env = {f"ERP_{name.upper()}": str(value) for name, value in values.items()}
    await asyncio.to_thread(upgrade, settings)
    worker_url = f"http://127.0.0.1:{metrics_port}/metrics"
    # The API as it is deployed, a process of its own: its scrapes hold its own traffic only.
    with (
        running_server(env, log_path=tmp_path / "server.log") as server,
        running_worker(env, tmp_path / "worker.log", command=tasks_worker_command(), cwd=tmp_path),
    ):
        async with (
            httpx.AsyncClient(base_url=server.base_url, headers=bearer(TEST_ADMIN_KEY), timeout=30) as client,
            httpx.AsyncClient(timeout=10) as plain,
        ):
            api_before = parse_samples((await client.get("/metrics")).text)
            worker_before = parse_samples((await plain.get(worker_url)).text)
            charge_id = await measured_charge(client, points=300)
            for _ in range(2):  # a miss, then a hit
                assert (await client.get(f"/api/v1/charges/{charge_id}")).status_code == 200
            accepted = await submit(client, charge_id, baseline={"diameter": {"center": 10.0, "sigma": 0.05}})
            assert (await wait_for(client, accepted["id"], {"succeeded", "failed"}))["status"] == "succeeded"
            api_after = parse_samples((await client.get("/metrics")).text)
            worker_after = parse_samples((await plain.get(worker_url)).text)
    series = [
        *input_series(api_before, api_after, API),
        *input_series(worker_before, worker_after, WORKER),
        {"series": series_line("up", frozenset(), API), "values": f"1x{BEFORE + AFTER}"},
        {"series": series_line("up", frozenset(), WORKER), "values": f"1x{BEFORE + AFTER}"},
    ]
    returned = with_data(promtool, tmp_path, series)
    # Grafana says "No data" for a panel when none of its queries returns a value.
    shown: dict[str, bool] = {}
    for index, (title, _) in enumerate(dashboard_queries()):
        values_of_query = [value for value in returned.get(index, []) if not math.isnan(value)]
        shown[title] = shown.get(title, False) or bool(values_of_query)
    assert [title for title, has_data in shown.items() if not has_data] == []
