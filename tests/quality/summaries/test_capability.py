"""The capability figures of GET /quality/summary rows, against the engine and textbook references."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import asdict
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.quality.models import QualityAlert
from erp_api.quality.schemas import MAX_SUMMARY_CHARGE_ROWS
from erp_api.quality.spc.capability import CapabilityReport, capability_report
from erp_api.quality.summaries.capability import SAMPLE_SIZE
from tests.charges.helpers import assert_problem
from tests.quality.helpers import SUMMARY, T0, new_charge, post_series, put_spec
from tests.quality.summaries.test_summary import c4, pooled_sigma

SAMPLE_FIGURES = (
    "sigma_within",
    "sigma_within_method",
    "sigma_overall",
    "cp",
    "cpk",
    "pp",
    "ppk",
    "cpm",
    "cp_ci",
    "cpk_ci",
    "ppm_observed",
    "ppm_expected_within",
    "ppm_expected_overall",
    "anderson_darling",
    "histogram",
    "warnings",
)


def close(got: Any, want: Any, name: str) -> None:
    """``got`` (JSON) equals ``want`` (the engine's value), floats to 1e-9 relative."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), name
        for key in want:
            close(got[key], want[key], f"{name}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), name
        for index, (a, b) in enumerate(zip(got, want, strict=True)):
            close(a, b, f"{name}[{index}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), name
    else:
        assert got == want, name


def assert_report(
    row: dict[str, Any], report: CapabilityReport, names: tuple[str, ...] = SAMPLE_FIGURES
) -> None:
    figures = asdict(report)
    for name in names:
        close(row[name], figures[name], name)


async def summary(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(SUMMARY, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def values(seed: int, n: int, mean: float = 25.0, sd: float = 0.02) -> list[float]:
    return [round(float(x), 4) for x in np.random.default_rng(seed).normal(mean, sd, n)]


async def test_every_figure_equals_the_capability_study_of_the_charges(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.95, usl=25.06, target=25.0)
    first, second = values(1, 40), values(2, 25, mean=25.01)
    charge_a, charge_b = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, charge_a, "diameter_mm", first)
    await post_series(client, charge_b, "diameter_mm", second, start=len(first))
    (row,) = await summary(client, product_sku="PUMP-A")
    report = capability_report(subgroups=[first, second], lsl=24.95, usl=25.06, target=25.0)
    assert_report(row, report)
    # The textbook references, by plain loops.
    series = first + second
    assert row["sigma_within"] == pytest.approx(pooled_sigma([first, second]), rel=1e-9)
    assert c4(2) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)
    assert row["sigma_overall"] == pytest.approx(statistics.stdev(series), rel=1e-9)
    outside = [x < 24.95 for x in series], [x > 25.06 for x in series]
    assert row["ppm_observed"]["below"] == pytest.approx(1e6 * sum(outside[0]) / len(series))
    assert row["ppm_observed"]["above"] == pytest.approx(1e6 * sum(outside[1]) / len(series))
    assert sum(row["histogram"]["counts"]) == len(series)
    assert row["sample"] == {"kind": "all", "size": len(series), "limit": SAMPLE_SIZE}
    assert (row["target"], row["charge_id"]) == (25.0, None)


async def test_one_sided_spec_gives_only_the_defined_indices(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", usl=25.05)
    data = values(3, 20)
    await post_series(client, await new_charge(client, 1), "diameter_mm", data)
    (row,) = await summary(client)
    assert_report(row, capability_report(subgroups=[data], usl=25.05))
    assert [row[name] for name in ("cp", "pp", "cp_ci", "cpm")] == [None] * 4
    assert row["cpk"] is not None and row["cpk_ci"] is not None and row["ppk"] is not None
    assert row["ppm_observed"]["below"] is None and row["ppm_expected_within"]["below"] is None
    assert {"one_sided", "n_below_30"} <= set(row["warnings"])


async def test_charges_of_one_point_fall_back_to_the_moving_range_in_time_order(
    client: httpx.AsyncClient,
) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    data = values(4, 6)
    for index, value in enumerate(data):
        await post_series(client, await new_charge(client, index + 1), "diameter_mm", [value], start=index)
    (row,) = await summary(client)
    moving = statistics.mean(abs(b - a) for a, b in itertools.pairwise(data))
    assert row["sigma_within_method"] == "moving_range"
    assert row["sigma_within"] == pytest.approx(moving / 1.128, rel=1e-9)
    assert_report(row, capability_report(subgroups=[[x] for x in data], lsl=24.9, usl=25.1))


async def test_the_sample_is_in_time_order_whatever_order_the_points_arrived_in(
    client: httpx.AsyncClient,
) -> None:
    # Posted out of time order (neither forwards nor backwards, which give the same moving ranges):
    # they are taken in measured_at order, not in the order the points arrived in.
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    data = values(9, 8)
    charges = [await new_charge(client, index + 1) for index in range(len(data))]
    for index in (3, 0, 5, 1, 7, 2, 6, 4):
        await post_series(client, charges[index], "diameter_mm", [data[index]], start=index)
    (row,) = await summary(client)
    moving = statistics.mean(abs(b - a) for a, b in itertools.pairwise(data))
    assert row["sigma_within_method"] == "moving_range"
    assert row["sigma_within"] == pytest.approx(moving / 1.128, rel=1e-9)


async def test_group_by_charge_gives_each_charge_its_own_study(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.95, usl=25.06, target=25.0)
    first, second = values(5, 35), values(6, 12)
    charge_a, charge_b = await new_charge(client, 1), await new_charge(client, 2)
    await new_charge(client, 3)  # without measurements: no row
    await post_series(client, charge_a, "diameter_mm", first)
    await post_series(client, charge_b, "diameter_mm", second, start=100)
    rows = await summary(client, product_sku="PUMP-A", group_by="charge")
    assert [(row["charge_id"], row["n"]) for row in rows] == [(charge_a, 35), (charge_b, 12)]
    for row, data in zip(rows, (first, second), strict=True):
        assert_report(row, capability_report(subgroups=[data], lsl=24.95, usl=25.06, target=25.0))
        assert row["mean"] == pytest.approx(statistics.mean(data), rel=1e-12)
        assert row["sample"] == {"kind": "all", "size": len(data), "limit": SAMPLE_SIZE}


async def test_raw_value_figures_read_the_latest_points_only(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    old, recent = values(7, 300, mean=24.95), values(8, SAMPLE_SIZE, mean=25.02)
    charge_a, charge_b = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, charge_a, "diameter_mm", old)
    await post_series(client, charge_b, "diameter_mm", recent, start=len(old))
    (row,) = await summary(client)
    assert row["n"] == len(old) + SAMPLE_SIZE
    assert row["sample"] == {"kind": "latest", "size": SAMPLE_SIZE, "limit": SAMPLE_SIZE}
    latest = capability_report(subgroups=[recent], lsl=24.9, usl=25.1)
    assert_report(row, latest, ("sigma_within", "cpm", "ppm_observed", "anderson_darling", "histogram"))
    everything = capability_report(subgroups=[old, recent], lsl=24.9, usl=25.1)
    assert_report(row, everything, ("sigma_overall", "pp", "ppk", "ppm_expected_overall"))
    assert row["mean"] == pytest.approx(statistics.mean(old + recent), rel=1e-9)
    rows = await summary(client, group_by="charge", **{"from": T0.isoformat()})
    assert [(row["n"], row["sample"]["kind"]) for row in rows] == [(len(old), "all"), (SAMPLE_SIZE, "all")]


async def test_an_open_alert_warns_of_rule_violations(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", values(9, 10))
    (row,) = await summary(client)
    assert "rule_violations_present" not in row["warnings"]
    # Stored directly (as the rule checker stores it): these queries are not cached yet.
    alert = QualityAlert(
        charge_id=charge_id,
        product_sku="PUMP-A",
        parameter="diameter_mm",
        rule="1",
        measurement_id=1,
        measurement_ids=[1],
        center=25.0,
        sigma=0.02,
    )
    async with sessions.begin() as session:
        session.add(alert)
    for params in ({}, {"group_by": "charge"}):
        (row,) = await summary(client, **params, product_sku="PUMP-A")
        assert "rule_violations_present" in row["warnings"]
    # Closing the alert through the API invalidates the cached summaries.
    moved = await client.post(
        f"{API_PREFIX}/quality/alerts/{alert.id}/transitions",
        json={"to": "dismissed", "reason": "probe fault"},
    )
    assert moved.status_code == 200, moved.text
    for params in ({}, {"group_by": "charge"}):
        (row,) = await summary(client, **params, product_sku="PUMP-A")
        assert "rule_violations_present" not in row["warnings"]


async def test_an_unknown_grouping_is_a_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(SUMMARY, params={"group_by": "line"}), 422)


async def test_charge_pages_walk_every_charge_and_parameter_exactly_once(client: httpx.AsyncClient) -> None:
    for product, parameter in (("PUMP-A", "diameter_mm"), ("PUMP-A", "bore_mm"), ("VALVE-B", "diameter_mm")):
        await put_spec(client, product, parameter, lsl=24.9, usl=25.1)
    charges = [await new_charge(client, serial) for serial in range(1, 5)]
    other = await new_charge(client, 5, product_sku="VALVE-B")
    await new_charge(client, 6)  # without measurements: no row
    expected = []
    for index, charge_id in enumerate(charges):
        await post_series(client, charge_id, "diameter_mm", values(20 + index, 3), start=10 * index)
        expected.append((charge_id, "diameter_mm"))
        if index % 2:
            await post_series(client, charge_id, "bore_mm", values(30 + index, 2), start=10 * index)
            expected.append((charge_id, "bore_mm"))
    await post_series(client, other, "diameter_mm", values(40, 4))
    expected = sorted([*expected, (other, "diameter_mm")])
    whole = (await client.get(SUMMARY, params={"group_by": "charge", "limit": 100})).json()
    assert whole["next_cursor"] is None
    walked: list[dict[str, Any]] = []
    url: str | None = SUMMARY
    params: dict[str, Any] | None = {"group_by": "charge", "limit": 2}
    while url is not None:
        response = await client.get(url, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        walked += page["items"]
        link = response.headers.get("link")
        assert (link is None) == (page["next_cursor"] is None)
        url, params = (None, None) if link is None else (link.split(">")[0].removeprefix("<"), None)
    assert [(row["charge_id"], row["parameter"]) for row in walked] == expected
    assert walked == whole["items"]
    assert len(walked) == 7


async def test_a_charge_page_keeps_the_filters_and_the_range(client: httpx.AsyncClient) -> None:
    for parameter in ("diameter_mm", "bore_mm"):
        await put_spec(client, "PUMP-A", parameter, lsl=24.9, usl=25.1)
    first, second = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, first, "diameter_mm", values(50, 5))
    await post_series(client, second, "diameter_mm", values(51, 5), start=100)
    await post_series(client, second, "bore_mm", values(52, 5), start=100)
    params: dict[str, Any] = {
        "group_by": "charge",
        "limit": 1,
        "parameter": "diameter_mm",
        "from": T0.isoformat(),
    }
    page = (await client.get(SUMMARY, params=params)).json()
    assert [row["charge_id"] for row in page["items"]] == [first]
    following = (await client.get(SUMMARY, params={**params, "cursor": page["next_cursor"]})).json()
    assert [(row["charge_id"], row["parameter"]) for row in following["items"]] == [(second, "diameter_mm")]
    assert following["next_cursor"] is None


async def test_the_summary_per_parameter_is_one_page(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    await post_series(client, await new_charge(client, 1), "diameter_mm", values(60, 5))
    response = await client.get(SUMMARY)
    assert response.status_code == 200 and "link" not in response.headers
    assert response.json()["next_cursor"] is None
    for paging in ({"limit": 5}, {"cursor": "abc"}):
        assert_problem(await client.get(SUMMARY, params=paging), 422)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "W10",  # []
        "WzEsMl0",  # [1,2]: an id cursor
        "WzEsImxpbmUiLCJkaWFtZXRlcl9tbSIsMV0",  # [1,"line","diameter_mm",1]: another sort
        "WzEsImNoYXJnZSIsIkRJQU1FVEVSIiwxXQ",  # [1,"charge","DIAMETER",1]: not a parameter
        "WzEsImNoYXJnZSIsImRpYW1ldGVyX21tIiwwXQ",  # [1,"charge","diameter_mm",0]: not an id
        "x" * 201,
    ],
)
async def test_a_cursor_not_issued_here_is_a_problem(client: httpx.AsyncClient, cursor: str) -> None:
    assert_problem(await client.get(SUMMARY, params={"group_by": "charge", "cursor": cursor}), 422)


@pytest.mark.parametrize("limit", ["0", str(MAX_SUMMARY_CHARGE_ROWS + 1), "many"])
async def test_a_page_size_out_of_bounds_is_a_problem(client: httpx.AsyncClient, limit: str) -> None:
    assert_problem(await client.get(SUMMARY, params={"group_by": "charge", "limit": limit}), 422)


async def test_the_openapi_document_describes_the_capability_figures(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    row = document["components"]["schemas"]["SummaryRow"]["properties"]
    assert {*SAMPLE_FIGURES, "sample", "charge_id", "target"} <= set(row)
    operation = document["paths"][SUMMARY]["get"]
    assert "group_by" in {parameter["name"] for parameter in operation["parameters"]}
