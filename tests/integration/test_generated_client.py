"""A client generated from the app's OpenAPI document by openapi-python-client works as a frontend
developer would use it: generated without a warning, imported, and driven through the main flow
(create a charge, fetch it, list charges, put a spec, post a measurement) against the app, on SQLite
and PostgreSQL. The generated client talks HTTP through an httpx client on the app's ASGI interface.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.charges.documents import charge_etag
from erp_api.openapi import build_openapi
from erp_api.settings import load_settings
from tests.conftest import BASE_URL, TEST_ADMIN_KEY, bearer

PACKAGE = "erp_api_client"
GENERATION_TIMEOUT_SECONDS = 300
# The generated modules the flow uses, by tag: the operation ids are the module names.
_OPERATIONS = {
    "charges": ("create_charge", "get_charge", "list_charges", "transition_charge", "list_products"),
    "quality": ("put_spec", "get_spec", "post_measurements"),
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the app's document, importable for this module's tests."""
    root = tmp_path_factory.mktemp("generated-client")
    document = root / "openapi.json"
    routes = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes
    document.write_bytes(orjson.dumps(build_openapi(routes)))
    # No post hooks: formatting the generated code is not what is tested, and needs ruff on the PATH.
    # The generator reads JSON, bytes and text bodies only: SVG (the charts) is XML text, NDJSON (the
    # exports) lines of JSON text.
    config = root / "config.yaml"
    config.write_text(
        f"package_name_override: {PACKAGE}\npost_hooks: []\n"
        'content_type_overrides:\n  "image/svg+xml": "text/plain"\n  "application/x-ndjson": "text/plain"\n'
    )
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)]
    command += ["--meta", "none", "--config", str(config), "--output-path", str(root / PACKAGE)]
    command += ["--fail-on-warning"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=GENERATION_TIMEOUT_SECONDS, cwd=root, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_the_generated_client_runs_the_main_flow(generated: ModuleType, app: Starlette) -> None:
    models = _module("models")
    api = {name: _module(f"api.{tag}.{name}") for tag, names in _OPERATIONS.items() for name in names}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer(TEST_ADMIN_KEY)
    ) as http:
        client = generated.AuthenticatedClient(base_url=BASE_URL, token=TEST_ADMIN_KEY)
        client.set_async_httpx_client(http)

        charges = []
        for serial in (1, 2):
            body = models.ChargeCreate(
                charge_number=f"CH-2026-{serial:06d}",
                product_sku="PUMP-A",
                quantity="1250.5",
                unit="pcs",
                line="Linie Süd",
                produced_at=datetime(2026, 3, 1, 6, serial, tzinfo=UTC),
            )
            created = await api["create_charge"].asyncio_detailed(client=client, body=body)
            assert created.status_code == 201, created.content
            assert isinstance(created.parsed, models.ChargeOut)
            assert created.headers["location"].endswith(f"/charges/{created.parsed.id}")
            charges.append(created.parsed)
        first = charges[0]
        assert (first.status, first.quantity, first.line) == (
            models.ChargeStatus.PLANNED,
            "1250.500",
            "Linie Süd",
        )

        fetched = await api["get_charge"].asyncio_detailed(first.id, client=client)
        assert fetched.status_code == 200 and fetched.parsed == first
        assert fetched.headers["etag"] == charge_etag(first.id, first.version)

        page = await api["list_charges"].asyncio_detailed(
            client=client,
            status=[models.ChargeStatus.PLANNED],
            sort=models.ChargeSort.CHARGE_NUMBER_DESCENDING,
            include_total=True,
            limit=1,
        )
        assert page.status_code == 200
        assert isinstance(page.parsed, models.ChargePage)
        assert page.parsed.total == 2 and [item.id for item in page.parsed.items] == [charges[1].id]
        assert 'rel="next"' in page.headers["link"]
        rest = await api["list_charges"].asyncio_detailed(
            client=client, sort=models.ChargeSort.CHARGE_NUMBER_DESCENDING, cursor=page.parsed.next_cursor
        )
        assert [item.id for item in rest.parsed.items] == [first.id]

        spec = models.SpecBody(unit="mm", lsl=9.9, usl=10.1, rules=models.RuleSet.WESTERN_ELECTRIC)
        stored = await api["put_spec"].asyncio_detailed("PUMP-A", "diameter_mm", client=client, body=spec)
        assert stored.status_code == 201 and stored.parsed.rules == models.RuleSet.WESTERN_ELECTRIC
        got = await api["get_spec"].asyncio_detailed("PUMP-A", "diameter_mm", client=client)
        assert got.status_code == 200 and got.parsed.usl == 10.1

        moved = await api["transition_charge"].asyncio_detailed(
            first.id, client=client, body=models.TransitionRequest(to=models.ChargeStatus.IN_PRODUCTION)
        )
        assert moved.status_code == 200 and moved.parsed.status == models.ChargeStatus.IN_PRODUCTION

        measurement = models.MeasurementIn(
            parameter="diameter_mm", value=10.02, measured_at=datetime(2026, 3, 1, 7, tzinfo=UTC)
        )
        posted = await api["post_measurements"].asyncio_detailed(first.id, client=client, body=measurement)
        assert posted.status_code == 201, posted.content
        assert isinstance(posted.parsed, models.MeasurementOut) and posted.parsed.value == 10.02

        products = await api["list_products"].asyncio_detailed(client=client)
        (product,) = products.parsed.items
        assert (product.product_sku, product.charges, product.by_status.in_production) == ("PUMP-A", 2, 1)

        refused = await api["get_charge"].asyncio_detailed(999_999, client=client)
        assert refused.status_code == 404 and isinstance(refused.parsed, models.Problem)
