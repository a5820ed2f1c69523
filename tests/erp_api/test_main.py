"""``python -m erp_api serve`` runs uvicorn as shipped, and the benchmarks' bare app runs the same way."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from benchmarks import bare_app
from erp_api.__main__ import SERVER_OPTIONS, main
from erp_api.serving import uvicorn_options
from erp_api.settings import load_settings


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: runs.append({"app": app, **options}))
    return runs


def test_serve_runs_uvicorn_with_the_shipped_options(
    uvicorn_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERP_HOST", "127.0.0.1")
    monkeypatch.setenv("ERP_PORT", "8123")
    assert main(["serve"]) == 0
    (run,) = uvicorn_runs
    assert run == {
        "app": "erp_api.app:create_app",
        "factory": True,
        "host": "127.0.0.1",
        "port": 8123,
        "workers": 1,
        **SERVER_OPTIONS,
        **uvicorn_options(load_settings()),
    }
    # The C implementations, named (no silent pure-Python fallback), and no uvicorn access log: the
    # app writes its own.
    assert (run["loop"], run["access_log"], run["server_header"]) == ("uvloop", False, False)
    assert issubclass(import_from_string(run["http"]), HttpToolsProtocol)
    # Forwarded headers believed from nobody unless ERP_TRUSTED_PROXIES names someone.
    assert (run["proxy_headers"], run["forwarded_allow_ips"]) == (False, [])


def test_the_bare_app_of_the_benchmarks_runs_with_the_same_options(
    uvicorn_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERP_HOST", "127.0.0.1")
    monkeypatch.setenv("ERP_PORT", "8124")
    bare_app.main()
    (run,) = uvicorn_runs
    assert {key: run[key] for key in SERVER_OPTIONS} == SERVER_OPTIONS
