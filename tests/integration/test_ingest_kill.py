"""No acknowledged measurement is lost when the server is killed (SIGKILL) in the middle of ingestion.

A real server process takes concurrent single-measurement POSTs (group commit on) from several
client threads; it is killed without warning while they are still posting. Every measurement that
got its 201 must then be in the database, with the id and value the response named.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from erp_api.db import create_engine
from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server, serve_command
from tests import services
from tests.charges.helpers import charge_payload

pytestmark = pytest.mark.slow

CLIENT_THREADS = 8
ACKNOWLEDGED_BEFORE_KILL = 300


async def _stored(database_url: str) -> dict[int, float]:
    engine = create_engine(load_settings(database_url=database_url))
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, value FROM measurements"))).all()
    finally:
        await engine.dispose()
    return {int(row.id): float(row.value) for row in rows}


def _post_until_refused(
    base_url: str, path: str, thread: int, acknowledged: dict[int, float], lock: threading.Lock
) -> None:
    """Post measurements until the server is gone; raises (into its future) on a wrong answer."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for serial in range(1_000_000):
            value = float(thread * 1_000_000 + serial)
            try:
                response = http.post(path, json={"parameter": "x", "value": value})
            except httpx.HTTPError:
                return  # the server is gone
            # 503: the ingestion queue is full (Retry-After); anything else is a wrong answer.
            assert response.status_code in {201, 503}, response.text
            if response.status_code == 201:
                body = response.json()
                assert body["value"] == value, body
                with lock:
                    acknowledged[body["id"]] = value


def _wait_for_acknowledgements(
    clients: list[Future[None]], acknowledged: dict[int, float], within: float = 120.0
) -> None:
    """Until ACKNOWLEDGED_BEFORE_KILL rows got their 201; a client that stops early fails the test."""
    deadline = time.monotonic() + within  # a hang guard
    while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL:
        done, _running = wait(clients, timeout=0.01, return_when=FIRST_EXCEPTION)
        for client in done:
            client.result()  # re-raises the client's failure here, in the test
        assert not done, "a client stopped posting while the server was up"
        assert time.monotonic() < deadline, f"only {len(acknowledged)} acknowledged in {within} s"


def _ingest_then_kill(database_url: str, tmp_path: Path) -> None:
    upgrade(load_settings(database_url=database_url))
    env = {
        "ERP_DATABASE_URL": database_url,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_INGEST_WINDOW_MS": "5",
        "ERP_ACCESS_LOG": "false",
        "ERP_LOG_LEVEL": "WARNING",
    }
    acknowledged: dict[int, float] = {}
    lock = threading.Lock()
    with (
        running_server(env, command=serve_command()) as server,
        ThreadPoolExecutor(CLIENT_THREADS) as pool,
    ):
        charge = httpx.post(f"{server.base_url}/api/v1/charges", json=charge_payload(1), timeout=10)
        assert charge.status_code == 201, charge.text
        spec = httpx.put(
            f"{server.base_url}/api/v1/quality/specs/PUMP-A/x", json={"unit": "mm", "usl": 1e9}, timeout=10
        )
        assert spec.status_code in {200, 201}, spec.text
        path = f"/api/v1/charges/{charge.json()['id']}/measurements"
        clients = [
            pool.submit(_post_until_refused, server.base_url, path, index, acknowledged, lock)
            for index in range(CLIENT_THREADS)
        ]
        try:
            _wait_for_acknowledgements(clients, acknowledged)
        finally:
            server.process.kill()
        for client in clients:
            client.result(timeout=60)  # each ends once the server is gone, or raises its failure
    assert server.process.returncode == -9
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    stored = asyncio.run(_stored(database_url))
    lost = {measurement_id for measurement_id in acknowledged if measurement_id not in stored}
    assert not lost, f"{len(lost)} acknowledged measurements are missing"
    assert all(stored[measurement_id] == value for measurement_id, value in acknowledged.items())


def test_sqlite_keeps_every_acknowledged_measurement_through_sigkill(tmp_path: Path) -> None:
    _ingest_then_kill(f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3", tmp_path)


@pytest.mark.postgres
def test_postgres_keeps_every_acknowledged_measurement_through_sigkill(tmp_path: Path) -> None:
    name, url = services.create_postgres_database()
    try:
        _ingest_then_kill(url, tmp_path)
    finally:
        services.drop_postgres_database(name)
