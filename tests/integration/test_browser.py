"""A real browser: headless Chromium runs a frontend served from another origin against a real server
(CORS, exposed headers, preflighted methods and headers), and renders the docs page.

The frontend is ``spa/spa.js``: its steps write their results into the page, which the test reads
back from the DOM; the live events arrive over an ``EventSource`` opened with a ticket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.browser import Page, find_chromium, headless_chromium
from testing.processes import Server, running_server
from tests import services
from tests.charges.helpers import charge_payload
from tests.conftest import TEST_ADMIN_KEY, bearer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_chromium() is None and not services.REQUIRE_SERVICES,
        reason="no Chromium (apt-get install chromium)",
    ),
]

SPA = Path(__file__).parent / "spa"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """``directory`` served over HTTP on 127.0.0.1 (a port of its own: an origin of its own)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
        upgrade(load_settings(database_url=url))
        yield url
        return
    services.require_postgres()
    name, url = services.create_postgres_database()
    try:
        upgrade(load_settings(database_url=url))
        yield url
    finally:
        services.drop_postgres_database(name)


@contextmanager
def api_for(origin: str, database: str, tmp_path: Path) -> Iterator[Server]:
    env = {
        "ERP_DATABASE_URL": database,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_AUTH_ENABLED": "true",
        "ERP_BOOTSTRAP_ADMIN_KEY": TEST_ADMIN_KEY,
        "ERP_CORS_ALLOW_ORIGINS": origin,
    }
    with running_server(env) as server:
        yield server


def step_results(page: Page) -> dict[str, Any]:
    """What the frontend wrote into the page: each step's result by name."""
    page.wait_for("document.getElementById('done').textContent === 'done'")
    written = page.evaluate(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll('#results li')]"
        ".map((item) => [item.dataset.step, JSON.parse(item.textContent)])))"
    )
    results: dict[str, Any] = json.loads(written)
    return results


def test_a_frontend_on_another_origin_works_with_the_api_in_chromium(database: str, tmp_path: Path) -> None:
    with static_site(SPA) as origin, api_for(origin, database, tmp_path) as server:
        with httpx.Client(base_url=server.base_url, headers=bearer(TEST_ADMIN_KEY), timeout=10) as http:
            first = http.post("/api/v1/charges", json=charge_payload(1))
            assert first.status_code == 201
            assert http.post("/api/v1/charges", json=charge_payload(2)).status_code == 201
        charge = first.json()

        with headless_chromium() as browser:
            page = browser.open(f"{origin}/index.html")
            page.evaluate(
                f"erpSpa.run({json.dumps({'api': server.base_url, 'key': TEST_ADMIN_KEY})})", timeout=60
            )
            results = step_results(page)

    errors = {name: result for name, result in results.items() if "error" in result}
    assert not errors, f"steps failed in the browser: {errors}; page log: {page.log}"
    listed = results["list_charges"]
    assert listed["status"] == 200 and listed["ids"] == [charge["id"]]
    # Exposed headers: without CORS exposing them, the browser hands the page null.
    assert listed["link"] is not None and 'rel="next"' in listed["link"]
    assert int(listed["rateLimitRemaining"]) >= 0 and int(listed["rateLimitLimit"]) > 0
    assert listed["requestId"]
    assert results["get_charge"] == {"status": 200, "etag": f'"c{charge["id"]}v1"'}
    assert results["patch_charge"] == {
        "status": 200,
        "etag": f'"c{charge["id"]}v2"',
        "line": "Linie Süd",
        "version": 2,
    }
    assert results["stale_patch"] == {"status": 412, "contentType": "application/problem+json"}
    # The live event of that PATCH, over an EventSource opened cross-origin with a ticket.
    assert results["open_events"] == {"status": 201, "expiresIn": 60, "readyState": 1}
    assert results["charge_event"] == {
        "type": "charge.updated",
        "idMatches": True,
        "chargeId": charge["id"],
        "version": 2,
        "line": "Linie Süd",
    }
    assert results["put_spec"]["status"] in (200, 201)
    analysis = results["idempotent_analysis"]
    assert analysis["statuses"] == [202, 202] and analysis["replayed"] == "true"
    assert analysis["location"].startswith("/api/v1/analyses/")
    exported = results["export_csv"]
    assert exported["status"] == 200 and exported["rows"] == 2
    assert exported["header"].startswith("id,charge_number,")
    assert exported["disposition"].startswith('attachment; filename="charges-')
    assert not [line for line in page.log if "CORS" in line or "Access-Control" in line], page.log


def test_the_docs_page_renders_swagger_ui_in_chromium(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
    upgrade(load_settings(database_url=url))
    with api_for("http://127.0.0.1:9", url, tmp_path) as server, headless_chromium() as browser:
        page = browser.open(f"{server.base_url}/")  # redirected to /docs
        title = page.wait_for("document.querySelector('.swagger-ui .info .title')?.textContent")
        paths = page.wait_for(
            "[...document.querySelectorAll('.opblock-summary-path')].map((element) => element.textContent)"
        )
        location = page.evaluate("location.pathname")
    assert "erp-api" in title
    assert "/api/v1/charges" in {path.replace("\u200b", "") for path in paths}
    assert location == "/docs"
    refused = [line for line in page.log if "Content Security Policy" in line or "Refused to" in line]
    assert not refused, refused
