"""The chart and capability pictures over HTTP: SVG documents under a CSP that admits exactly their
style sheet, deterministic, redrawn when their data changes; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from erp_api.http import API_PREFIX
from erp_api.settings import Settings
from tests.charges.helpers import assert_problem
from tests.quality.helpers import new_charge, post_series, put_spec, serving, tuned

CHART_SVG = f"{API_PREFIX}/quality/control-chart.svg"
CAPABILITY_SVG = f"{API_PREFIX}/quality/capability.svg"
SVG = "{http://www.w3.org/2000/svg}"
XBAR = {"product_sku": "PUMP-A", "parameter": "diameter_mm", "chart": "xbar_r"}
CAPABILITY = {"product_sku": "PUMP-A", "parameter": "diameter_mm"}


async def _picture(client: httpx.AsyncClient, url: str, params: dict[str, Any]) -> str:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    (sheet,) = re.findall(r"<style>(.*?)</style>", response.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(sheet.encode()).digest()).decode()
    assert response.headers["content-security-policy"] == (
        f"default-src 'none'; frame-ancestors 'none'; style-src 'sha256-{digest}'"
    )
    assert ElementTree.fromstring(response.text).tag == f"{SVG}svg"
    return response.text


async def _charges(client: httpx.AsyncClient, count: int = 12, shifted: int = 8, **spec: Any) -> None:
    """``count`` charges of three values around 10; charge ``shifted`` lies far above."""
    await put_spec(client, "PUMP-A", "diameter_mm", **(spec or {"lsl": 9.0, "usl": 11.0, "target": 10.0}))
    for serial in range(1, count + 1):
        charge_id = await new_charge(client, serial)
        base = 12.0 if serial == shifted else 10.0
        wobble = (serial % 3) * 0.05
        values = [base - 0.1 + wobble, base + wobble, base + 0.1 - wobble]
        await post_series(client, charge_id, "diameter_mm", values, start=10 * serial)


def _panels(document: str) -> list[str | None]:
    root = ElementTree.fromstring(document)
    return [group.get("data-chart") for group in root.iter(f"{SVG}g") if group.get("class") == "panel"]


def _violations(document: str) -> list[str | None]:
    root = ElementTree.fromstring(document)
    return [group.get("data-rules") for group in root.iter(f"{SVG}g") if group.get("class") == "violation"]


async def test_a_chart_picture_is_svg_with_its_panels_and_violation_markers(
    client: httpx.AsyncClient,
) -> None:
    await _charges(client)
    document = await _picture(client, CHART_SVG, XBAR)
    assert _panels(document) == ["xbar", "r"]
    assert "N1" in _violations(document)
    assert "one subgroup per charge" in document
    json_chart = (await client.get(f"{API_PREFIX}/quality/control-chart", params=XBAR)).json()
    flagged = [point for chart in json_chart["charts"] for point in chart["points"] if point["violations"]]
    assert len(_violations(document)) == len(flagged)


async def test_the_same_data_draws_the_same_bytes_in_another_process(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await _charges(client)
    first = await _picture(client, CHART_SVG, XBAR)
    capability = await _picture(client, CAPABILITY_SVG, CAPABILITY)
    # Another app on the same database has a cache of its own: it draws the pictures anew.
    async with serving(tuned(settings)) as (_app, other):
        assert await _picture(other, CHART_SVG, XBAR) == first
        assert await _picture(other, CAPABILITY_SVG, CAPABILITY) == capability


async def test_an_individuals_picture_shows_the_spec_and_follows_its_changes(
    client: httpx.AsyncClient,
) -> None:
    await _charges(client, count=3)
    params = {"charge_id": 1, "parameter": "diameter_mm"}
    assert "USL 11" in await _picture(client, CHART_SVG, params)
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.0, usl=12.5)
    redrawn = await _picture(client, CHART_SVG, params)
    assert "USL 12.5" in redrawn and _panels(redrawn) == ["individuals", "mr"]


async def test_an_attribute_chart_has_a_picture(client: httpx.AsyncClient) -> None:
    for serial, found in enumerate([1, 2, 1, 9], start=1):
        charge_id = await new_charge(client, serial)
        body = {"characteristic": "scratches", "inspected": 40, "nonconforming": found}
        assert (
            await client.post(f"{API_PREFIX}/charges/{charge_id}/inspections", json=body)
        ).status_code == 201
    params = {"product_sku": "PUMP-A", "chart": "np", "characteristic": "scratches"}
    document = await _picture(client, CHART_SVG, params)
    assert _panels(document) == ["np"] and _violations(document) == ["N1"]


async def test_the_capability_picture_studies_all_values_with_curves_and_indices(
    client: httpx.AsyncClient,
) -> None:
    await _charges(client, shifted=0)
    document = await _picture(client, CAPABILITY_SVG, CAPABILITY)
    assert "Capability of diameter_mm, PUMP-A: all 36 non-voided values" in document
    for drawn in ('class="bar"', 'class="fit-within"', 'class="fit-overall"', "LSL 9", "USL 11", "Target 10"):
        assert drawn in document, drawn
    assert "n: 36" in document and "Cpk: " in document and "rule_violations_present" not in document


async def test_the_capability_picture_takes_the_latest_5000_values_and_says_so(
    client: httpx.AsyncClient,
) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=0.0, usl=100.0)
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", [float(i % 7) for i in range(5_003)])
    document = await _picture(client, CAPABILITY_SVG, CAPABILITY)
    assert "the latest 5,000 of 5,003 non-voided values" in document and "n: 5000" in document


async def test_the_capability_picture_warns_when_the_specs_rules_flag_a_point(
    client: httpx.AsyncClient,
) -> None:
    await _charges(client, lsl=9.0, usl=13.0)
    assert "warning: rule_violations_present" in await _picture(client, CAPABILITY_SVG, CAPABILITY)
    # The spec checks N3 only: the shifted charge breaks N1 and more, but no six-point trend.
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=9.0, usl=13.0, rule_ids=["N3"])
    assert "rule_violations_present" not in await _picture(client, CAPABILITY_SVG, CAPABILITY)


async def test_pictures_answer_problems_for_bad_requests(
    client: httpx.AsyncClient, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    assert_problem(await client.get(CAPABILITY_SVG, params=CAPABILITY), 404)
    assert_problem(await client.get(CAPABILITY_SVG, params={"product_sku": "PUMP-A"}), 422)
    assert_problem(await client.get(CHART_SVG, params={"charge_id": 424242, "parameter": "x"}), 404)
    assert_problem(await client.get(CHART_SVG, params={**XBAR, "lambda": 0.5}), 422)
    viewer = await client_as("viewer")
    await _charges(client, count=2)
    assert (await viewer.get(CHART_SVG, params=XBAR)).status_code == 200
    assert (await viewer.get(CAPABILITY_SVG, params=CAPABILITY)).status_code == 200
