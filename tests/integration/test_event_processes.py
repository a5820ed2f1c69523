"""Live events across real server processes, every middleware (gzip, access log) in the way: a write
on one process reaches a stream served by another, heartbeats flow through, and a ticket issued by
one process opens one stream on another, once, and is never written to a log (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from erp_api.http import API_PREFIX
from testing.processes import Server, running_server
from tests.integration.test_export_streaming import DATABASES, migrated_database

pytestmark = pytest.mark.slow

ADMIN_KEY = "erp_events-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url


@contextmanager
def two_servers(url: str, tmp_path: Path, **settings: Any) -> Iterator[tuple[Server, Server]]:
    env = {
        "ERP_DATABASE_URL": url,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_AUTH_ENABLED": "true",
        "ERP_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        **{f"ERP_{name.upper()}": str(value) for name, value in settings.items()},
    }
    with ExitStack() as stack:
        first = stack.enter_context(running_server(env))
        second = stack.enter_context(running_server(env))
        yield first, second


def frames(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE frames from a line iterator: each as its fields (a comment as ``comment``)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            fields["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(": ")
            fields[name] = value


def next_event(stream: Iterator[dict[str, str]]) -> dict[str, str]:
    return next(frame for frame in stream if "event" in frame)


def test_a_write_on_one_process_reaches_a_stream_on_another(database: str, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Accept-Encoding": "gzip"}
    with (
        two_servers(database, tmp_path, event_heartbeat_seconds=0.2) as (writer, reader),
        httpx.Client(headers=headers, timeout=TIMEOUT) as http,
        http.stream("GET", f"{reader.base_url}{API_PREFIX}/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in response.headers
        stream = frames(response.iter_lines())
        assert "retry" in next(stream)
        assert next(stream).get("comment") == "ping"  # heartbeats pass every middleware unbuffered
        body = {"charge_number": "CH-1", "product_sku": "PUMP-A", "quantity": "1", "unit": "pcs"}
        body |= {"line": "L1", "produced_at": "2026-04-01T06:00:00Z"}
        created = http.post(f"{writer.base_url}{API_PREFIX}/charges", json=body)
        assert created.status_code == 201, created.text
        event = next_event(stream)
    assert event["event"] == "charge.created"
    assert json.loads(event["data"])["charge_id"] == created.json()["id"]


def test_a_ticket_from_one_process_opens_one_stream_on_another_and_is_never_logged(
    database: str, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with two_servers(database, tmp_path) as (issuer, reader), httpx.Client(timeout=TIMEOUT) as http:
        issued = http.post(f"{issuer.base_url}{API_PREFIX}/events/tickets", headers=admin)
        assert issued.status_code == 201, issued.text
        ticket = issued.json()["ticket"]
        url = f"{reader.base_url}{API_PREFIX}/events"
        with http.stream("GET", url, params={"ticket": ticket}) as response:
            assert response.status_code == 200
            assert "retry" in next(frames(response.iter_lines()))
        again = http.get(f"{issuer.base_url}{API_PREFIX}/events", params={"ticket": ticket})
        assert again.status_code == 401
        logs = issuer.process.log() + reader.process.log()
    assert f"{API_PREFIX}/events" in logs
    assert ticket not in logs
