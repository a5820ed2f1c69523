"""The service started as a real process (``python -m erp_api serve``), spoken to over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server, serve_command
from tests.charges.helpers import charge_payload

pytestmark = pytest.mark.slow


def test_real_server_serves_creates_and_caches_over_http(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
    upgrade(load_settings(database_url=url))
    env = {"ERP_DATABASE_URL": url, "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3"}
    with (
        running_server(env, command=serve_command()) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        created = http.post("/api/v1/charges", json=charge_payload(1))
        assert created.status_code == 201
        location = created.headers["location"]
        first = http.get(location)
        assert first.json() == created.json()
        assert http.get(location, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        http.patch(location, json={"line": "L9"})
        assert http.get(location).json()["line"] == "L9"
        listed = http.get("/api/v1/charges", params={"line": "L9"}).json()
        assert [item["id"] for item in listed["items"]] == [created.json()["id"]]
        broken = http.post("/api/v1/charges", content=b"{", headers={"content-type": "application/json"})
        assert broken.status_code == 400
        assert broken.headers["content-type"] == "application/problem+json"
    # uvicorn finishes its graceful shutdown, then re-raises SIGTERM so the exit status tells why it stopped.
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in server.process.log()
