"""Small builders for charge payloads used across the charges tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

BASE = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def charge_payload(serial: int, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "charge_number": f"CH-2026-{serial:06d}",
        "product_sku": "PUMP-A",
        "quantity": "125.5",
        "unit": "pcs",
        "line": "L1",
        "produced_at": (BASE + timedelta(hours=serial)).isoformat(),
    }
    payload.update(overrides)
    return payload


async def create(client: httpx.AsyncClient, serial: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/charges", json=charge_payload(serial, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    assert "Traceback" not in response.text
    return body
