"""Each violation raises exactly one alert even when the server dies between a commit and its check.

A real server process whose rule checker waits (``ERP_RULE_CHECK_DELAY_SECONDS``, test only) takes
violating measurements (a batch and single posts through the group commit), answers 201, and is
SIGKILLed before it checks them. A new server's sweep then opens exactly the alerts the engine finds
on the stored series: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from erp_api.db import create_engine, create_session_factory
from erp_api.migrate import upgrade
from erp_api.quality.models import QualityAlert, RuleCheck
from erp_api.settings import load_settings
from testing.processes import running_server, serve_command
from tests import services
from tests.charges.helpers import charge_payload
from tests.quality.alerts.helpers import BEYOND_3_SIGMA, expected_alerts, quiet, series_points
from tests.quality.helpers import at

pytestmark = pytest.mark.slow

API = "/api/v1"
HANG_GUARD = 60.0


async def _state(database_url: str) -> tuple[int, list[tuple[str, int]], set[tuple[str, int]]]:
    """(outbox rows, stored alerts as (rule, measurement id), the engine's alerts on the stored series)."""
    engine = create_engine(load_settings(database_url=database_url))
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            pending = int(await session.scalar(select(func.count()).select_from(RuleCheck)) or 0)
            alerts = [
                (alert.rule, alert.measurement_id)
                for alert in (await session.scalars(select(QualityAlert).order_by(QualityAlert.id))).all()
            ]
        expected = expected_alerts(await series_points(sessions))
    finally:
        await engine.dispose()
    return pending, alerts, expected


def _ingest(http: httpx.Client) -> None:
    """A watched series in production, then violations: a batch and single posts."""
    charge = http.post(f"{API}/charges", json=charge_payload(1))
    assert charge.status_code == 201, charge.text
    charge_id = charge.json()["id"]
    steps = [
        http.post(f"{API}/charges/{charge_id}/transitions", json={"to": "in_production"}),
        http.put(f"{API}/quality/specs/PUMP-A/diameter", json={"unit": "mm", "lsl": 0.0, "usl": 100.0}),
        http.put(f"{API}/quality/specs/PUMP-A/diameter/limits", json={"center": 10.0, "sigma": 1.0}),
    ]
    assert all(step.status_code in (200, 201) for step in steps), [step.text for step in steps]
    values = [*quiet(20), BEYOND_3_SIGMA, *[10.2] * 9]
    items = [
        {"parameter": "diameter", "value": value, "measured_at": at(i)} for i, value in enumerate(values)
    ]
    batch = http.post(f"{API}/charges/{charge_id}/measurements", json={"items": items})
    assert batch.status_code == 201, batch.text
    for minute in range(40, 46):
        value = BEYOND_3_SIGMA if minute % 2 else 9.0
        single = http.post(
            f"{API}/charges/{charge_id}/measurements",
            json={"parameter": "diameter", "value": value, "measured_at": at(minute)},
        )
        assert single.status_code == 201, single.text


def _kill_then_recover(database_url: str, tmp_path: Path) -> None:
    upgrade(load_settings(database_url=database_url))
    env = {
        "ERP_DATABASE_URL": database_url,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_ACCESS_LOG": "false",
        "ERP_LOG_LEVEL": "WARNING",
    }
    with running_server({**env, "ERP_RULE_CHECK_DELAY_SECONDS": "600"}, command=serve_command()) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            _ingest(http)
        server.process.kill()
    assert server.process.returncode == -9
    pending, alerts, expected = asyncio.run(_state(database_url))
    assert pending > 0 and alerts == []
    assert {rule for rule, _ in expected} >= {"N1", "N2"}

    with (
        running_server({**env, "ERP_RULE_CHECK_SWEEP_SECONDS": "0.5"}, command=serve_command()) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        deadline = time.monotonic() + HANG_GUARD
        while len(http.get(f"{API}/quality/alerts", params={"limit": 500}).json()["items"]) < len(expected):
            assert time.monotonic() < deadline, "the sweep did not open the alerts"
            time.sleep(0.1)
        time.sleep(1.5)  # a few more sweeps: they must find nothing more to open
        listed = http.get(f"{API}/quality/alerts", params={"limit": 500}).json()["items"]
    pending, alerts, expected = asyncio.run(_state(database_url))
    assert pending == 0
    assert sorted(alerts) == sorted(expected)
    assert sorted((alert["rule"], alert["measurement_id"]) for alert in listed) == sorted(expected)


def test_sqlite_opens_each_alert_once_after_a_sigkill_between_commit_and_check(tmp_path: Path) -> None:
    _kill_then_recover(f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3", tmp_path)


@pytest.mark.postgres
def test_postgres_opens_each_alert_once_after_a_sigkill_between_commit_and_check(tmp_path: Path) -> None:
    name, url = services.create_postgres_database()
    try:
        _kill_then_recover(url, tmp_path)
    finally:
        services.drop_postgres_database(name)
