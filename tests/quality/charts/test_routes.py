"""Variable control charts over HTTP (X-bar/R, X-bar/S, EWMA, CUSUM, individuals of a product), their
stored limits and query validation, and the rule catalogue; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    CHART,
    at,
    given_spec,
    limits_url,
    measurement_ids,
    new_charge,
    post_series,
    void,
)

RULES = f"{API_PREFIX}/quality/rules"
D2 = {2: 1.128, 3: 1.693, 4: 2.059}
D3 = {3: 0.888}


def c4(n: int) -> float:
    return math.sqrt(2 / (n - 1)) * math.gamma(n / 2) / math.gamma((n - 1) / 2)


async def _chart(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(CHART, params={"product_sku": "PUMP-A", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _charges_with(client: httpx.AsyncClient, groups: dict[int, list[float]]) -> dict[int, int]:
    """One charge per serial (produced ``serial`` hours after the base time) with its values; the
    charges are created in the order given, which need not be production order."""
    await given_spec(client, "diameter_mm")
    ids = {}
    for position, (serial, values) in enumerate(groups.items()):
        ids[serial] = await new_charge(client, serial)
        await post_series(client, ids[serial], "diameter_mm", values, start=100 * position)
    return ids


def _number(serial: int) -> str:
    return f"CH-2026-{serial:06d}"


async def test_xbar_r_has_one_subgroup_per_charge_in_production_order_with_hand_computed_lines(
    client: httpx.AsyncClient,
) -> None:
    # Created out of production order; serial 4 has one value only and makes no subgroup.
    await _charges_with(
        client, {3: [11.0, 12.0, 13.0], 1: [10.0, 11.0, 12.0], 4: [50.0], 2: [9.0, 10.0, 14.0]}
    )
    body = await _chart(client, chart="xbar_r", parameter="diameter_mm")
    assert (body["chart"], body["subgroups"], body["limits_source"]) == ("xbar_r", "charge", "computed")
    xbar, ranges = body["charts"]
    assert (xbar["name"], ranges["name"]) == ("xbar", "r")
    assert [point["label"] for point in xbar["points"]] == [_number(1), _number(2), _number(3)]
    assert [point["value"] for point in xbar["points"]] == pytest.approx([11.0, 11.0, 12.0])
    assert [point["n"] for point in xbar["points"]] == [3, 3, 3]
    assert [point["value"] for point in ranges["points"]] == [2.0, 5.0, 2.0]
    r_bar, center = 3.0, 34 / 3
    sigma = r_bar / D2[3]
    assert body["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert body["sigma_method"] == "r_bar"
    assert xbar["center"] == pytest.approx(center, rel=1e-12)
    assert xbar["ucl"] == pytest.approx(center + 3 * sigma / math.sqrt(3), rel=1e-12)
    assert xbar["lcl"] == pytest.approx(center - 3 * sigma / math.sqrt(3), rel=1e-12)
    assert ranges["center"] == pytest.approx(r_bar)
    assert ranges["ucl"] == pytest.approx((1 + 3 * D3[3] / D2[3]) * r_bar, rel=1e-12)
    assert ranges["lcl"] == 0.0
    assert all(point["violations"] == [] for chart in body["charts"] for point in chart["points"])


async def test_xbar_s_uses_s_bar_over_c4(client: httpx.AsyncClient) -> None:
    groups = {1: [10.0, 11.0, 12.0], 2: [9.0, 10.0, 14.0], 3: [11.0, 12.0, 13.0]}
    await _charges_with(client, groups)
    body = await _chart(client, chart="xbar_s", parameter="diameter_mm")
    xbar, spread = body["charts"]
    sds = [statistics.stdev(values) for values in groups.values()]
    assert spread["name"] == "s"
    assert [point["value"] for point in spread["points"]] == pytest.approx(sds, rel=1e-12)
    sigma = statistics.mean(sds) / c4(3)
    assert (body["sigma"], body["sigma_method"]) == (pytest.approx(sigma, rel=1e-12), "s_bar")
    assert xbar["ucl"] == pytest.approx(34 / 3 + 3 * sigma / math.sqrt(3), rel=1e-12)
    assert spread["ucl"] == pytest.approx(statistics.mean(sds) + 3 * sigma * math.sqrt(1 - c4(3) ** 2))


async def test_unequal_subgroups_have_limits_per_point_and_none_for_the_chart(
    client: httpx.AsyncClient,
) -> None:
    groups = {1: [10.0, 12.0], 2: [9.0, 10.0, 14.0], 3: [11.0, 12.0, 13.0, 10.0]}
    await _charges_with(client, groups)
    body = await _chart(client, chart="xbar_r", parameter="diameter_mm")
    xbar, ranges = body["charts"]
    # qcc's UWAVE-R: the mean of R_i / d2(n_i); the centre is the grand mean of all values.
    sigma = statistics.mean((max(v) - min(v)) / D2[len(v)] for v in groups.values())
    center = statistics.mean(value for values in groups.values() for value in values)
    assert body["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert (xbar["ucl"], xbar["lcl"], xbar["center"]) == (None, None, pytest.approx(center))
    for point, values in zip(xbar["points"], groups.values(), strict=True):
        assert point["n"] == len(values)
        assert point["ucl"] == pytest.approx(center + 3 * sigma / math.sqrt(len(values)), rel=1e-12)
        assert point["lcl"] == pytest.approx(center - 3 * sigma / math.sqrt(len(values)), rel=1e-12)
    assert ranges["ucl"] is None and len({point["ucl"] for point in ranges["points"]}) == 3


async def test_fixed_subgroups_are_consecutive_values_ending_with_the_newest(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    first, second = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, first, "diameter_mm", [1.0, 2.0, 3.0, 4.0])
    await post_series(client, second, "diameter_mm", [5.0, 6.0, 8.0], start=10)
    body = await _chart(client, chart="xbar_r", parameter="diameter_mm", subgroup_size=3)
    assert (body["subgroups"], body["subgroup_size"]) == ("fixed", 3)
    xbar, ranges = body["charts"]
    # Seven values in measured order: the oldest one is left over, then (2, 3, 4) and (5, 6, 8).
    assert [point["value"] for point in xbar["points"]] == pytest.approx([3.0, 19 / 3])
    assert [point["value"] for point in ranges["points"]] == [2.0, 3.0]
    assert [point["label"] for point in xbar["points"]] == [at(1), at(10)]


async def test_a_subgroup_chart_uses_the_stored_limits_once_they_are_set_and_skips_voided_values(
    client: httpx.AsyncClient,
) -> None:
    ids = await _charges_with(client, {1: [10.0, 11.0, 12.0], 2: [9.0, 10.0, 14.0]})
    before = await _chart(client, chart="xbar_r", parameter="diameter_mm")
    assert before["limits_source"] == "computed"
    response = await client.put(limits_url(), json={"center": 10.0, "sigma": 0.5})
    assert response.status_code == 201, response.text
    after = await _chart(client, chart="xbar_r", parameter="diameter_mm")
    assert (after["limits_source"], after["limits_id"]) == ("stored", response.json()["id"])
    assert (after["sigma"], after["sigma_method"]) == (0.5, "baseline")
    xbar = after["charts"][0]
    assert xbar["center"] == 10.0
    assert xbar["ucl"] == pytest.approx(10.0 + 3 * 0.5 / math.sqrt(3))
    # 11.0 lies beyond 10 + 3 * 0.5 / sqrt(3) = 10.87: both subgroups break N1.
    assert [point["violations"][:1] for point in xbar["points"]] == [["N1"], ["N1"]]

    await void(client, (await measurement_ids(client, ids[2]))[2])
    voided = await _chart(client, chart="xbar_r", parameter="diameter_mm")
    assert [point["value"] for point in voided["charts"][0]["points"]] == pytest.approx([11.0, 9.5])


async def test_xbar_r_refuses_a_charge_of_more_than_25_values_and_names_xbar_s(
    client: httpx.AsyncClient,
) -> None:
    await _charges_with(client, {1: [float(i % 5) for i in range(26)]})
    body = assert_problem(
        await client.get(
            CHART, params={"product_sku": "PUMP-A", "chart": "xbar_r", "parameter": "diameter_mm"}
        ),
        422,
    )
    assert "xbar_s" in body["detail"]
    spread = await _chart(client, chart="xbar_s", parameter="diameter_mm")
    assert [point["n"] for point in spread["charts"][0]["points"]] == [26]


def _ewma(values: list[float], lam: float, width: float) -> tuple[list[float], list[float], list[float]]:
    """EWMA and its limits by the textbook recursion (NIST 6.3.2.4), independent of the engine."""
    center = statistics.mean(values)
    sigma = statistics.mean(abs(b - a) for a, b in itertools.pairwise(values)) / 1.128
    z, smoothed, upper, lower = center, [], [], []
    for i, value in enumerate(values, start=1):
        z = lam * value + (1 - lam) * z
        smoothed.append(z)
        half = width * sigma * math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * i)))
        upper.append(center + half)
        lower.append(center - half)
    return smoothed, upper, lower


async def test_ewma_follows_lambda_and_L(client: httpx.AsyncClient) -> None:
    # Steady a little below the mean, then a shift up: the EWMA leaves its limits on both sides.
    values = [10.0, 10.2, 9.9, 10.1, 10.0, 10.1, 9.9, 10.0, 11.0, 11.2, 11.1, 11.3]
    await _charges_with(client, {1: values})
    body = await _chart(client, chart="ewma", parameter="diameter_mm", **{"lambda": 0.5, "L": 2})
    (ewma,) = body["charts"]
    smoothed, upper, lower = _ewma(values, 0.5, 2.0)
    assert ewma["name"] == "ewma"
    assert (ewma["parameters"]["lambda"], ewma["parameters"]["L"]) == (0.5, 2.0)
    assert [point["value"] for point in ewma["points"]] == pytest.approx(smoothed, rel=1e-12)
    assert [point["ucl"] for point in ewma["points"]] == pytest.approx(upper, rel=1e-12)
    assert [point["lcl"] for point in ewma["points"]] == pytest.approx(lower, rel=1e-12)
    flagged = [i for i, point in enumerate(ewma["points"]) if point["violations"] == ["EWMA"]]
    beyond = zip(smoothed, upper, lower, strict=True)
    assert flagged == [i for i, (z, high, low) in enumerate(beyond) if not low <= z <= high]
    assert flagged[-1] == len(values) - 1 and flagged[0] == 2


async def test_cusum_accumulates_beyond_k_and_signals_above_h(client: httpx.AsyncClient) -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0, 12.0, 13.0, 13.5, 14.0]
    await _charges_with(client, {1: values})
    body = await _chart(client, chart="cusum", parameter="diameter_mm", k=0.25, h=1.5)
    upper, lower = body["charts"]
    assert (upper["name"], lower["name"]) == ("cusum_upper", "cusum_lower")
    target = statistics.mean(values)
    sigma = statistics.mean(abs(b - a) for a, b in itertools.pairwise(values)) / 1.128
    high, sums = 0.0, []
    for value in values:
        high = max(0.0, value - (target + 0.25 * sigma) + high)
        sums.append(high)
    assert [point["value"] for point in upper["points"]] == pytest.approx(sums, rel=1e-12)
    assert upper["parameters"]["H"] == pytest.approx(1.5 * sigma)
    flagged = [i for i, point in enumerate(upper["points"]) if "CUSUM" in point["violations"]]
    assert flagged == [i for i, total in enumerate(sums) if total > 1.5 * sigma] != []


async def test_an_individuals_chart_of_a_product_spans_its_charges_in_measured_order(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    first, second = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, second, "diameter_mm", [13.0, 9.0], start=3)
    await post_series(client, first, "diameter_mm", [10.0, 12.0, 11.0])
    body = await _chart(client, parameter="diameter_mm")
    assert (body["chart"], body["charge_id"], "limits" in body) == ("imr", None, False)
    x_chart, moving_range = body["charts"]
    assert [point["value"] for point in x_chart["points"]] == [10.0, 12.0, 11.0, 13.0, 9.0]
    assert [point["label"] for point in x_chart["points"]] == [at(i) for i in range(5)]
    assert x_chart["center"] == pytest.approx(11.0) and moving_range["center"] == pytest.approx(2.25)
    assert body["sigma"] == pytest.approx(2.25 / 1.128)


async def test_a_charge_chart_keeps_its_fields_and_lists_the_x_and_mr_charts(
    client: httpx.AsyncClient,
) -> None:
    await given_spec(client, "diameter_mm")
    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", [10.0, 10.1, 9.9, 10.0, 13.0, 10.0])
    response = await client.get(CHART, params={"charge_id": charge_id, "parameter": "diameter_mm"})
    body = response.json()
    assert {"charge_id", "parameter", "rules", "limits_source", "limits_id", "limits", "points"} <= set(body)
    x_chart, moving_range = body["charts"]
    assert [point["violations"] for point in x_chart["points"]] == [
        point["violations"] for point in body["points"]
    ]
    assert x_chart["ucl"] == pytest.approx(body["limits"]["ucl"])
    assert moving_range["center"] == pytest.approx(body["limits"]["mr_bar"])
    assert body["product_sku"] == "PUMP-A" and body["sigma"] == pytest.approx(body["limits"]["sigma"])


async def test_a_charge_has_ewma_and_cusum_charts_of_its_own_values(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm")
    charge_id, other = await new_charge(client, 1), await new_charge(client, 2)
    await post_series(client, charge_id, "diameter_mm", [10.0, 12.0, 11.0])
    await post_series(client, other, "diameter_mm", [50.0, 60.0], start=10)
    params = {"charge_id": charge_id, "parameter": "diameter_mm"}
    ewma = (await client.get(CHART, params={**params, "chart": "ewma"})).json()
    assert (ewma["charge_id"], ewma["product_sku"], "points" in ewma) == (charge_id, "PUMP-A", False)
    assert [point["label"] for point in ewma["charts"][0]["points"]] == [at(0), at(1), at(2)]
    cusum = (await client.get(CHART, params={**params, "chart": "cusum"})).json()
    assert [chart["name"] for chart in cusum["charts"]] == ["cusum_upper", "cusum_lower"]
    assert cusum["charts"][0]["parameters"]["target"] == pytest.approx(11.0)


async def test_a_chart_follows_new_measurements(client: httpx.AsyncClient) -> None:
    ids = await _charges_with(client, {1: [10.0, 11.0, 12.0]})
    assert len((await _chart(client, chart="xbar_s", parameter="diameter_mm"))["charts"][0]["points"]) == 1
    await post_series(client, ids[1], "diameter_mm", [13.0], start=50)
    (point,) = (await _chart(client, chart="xbar_s", parameter="diameter_mm"))["charts"][0]["points"]
    assert (point["n"], point["value"]) == (4, 11.5)
    other = await new_charge(client, 2)
    await post_series(client, other, "diameter_mm", [1.0, 2.0], start=60)
    assert len((await _chart(client, chart="xbar_s", parameter="diameter_mm"))["charts"][0]["points"]) == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"parameter": "x"}, "either charge_id or product_sku"),
        ({"product_sku": "PUMP-A", "charge_id": 1, "parameter": "x"}, "either charge_id or product_sku"),
        ({"charge_id": 1, "chart": "xbar_r", "parameter": "x"}, "give product_sku"),
        ({"product_sku": "PUMP-A", "chart": "xbar_r"}, "give parameter"),
        ({"product_sku": "PUMP-A", "chart": "p", "parameter": "x"}, "give characteristic"),
        ({"product_sku": "PUMP-A", "parameter": "x", "lambda": 0.3}, "lambda applies to chart=ewma"),
        ({"product_sku": "PUMP-A", "chart": "ewma", "parameter": "x", "k": 1}, "k applies to chart=cusum"),
        ({"product_sku": "PUMP-A", "parameter": "x", "subgroup_size": 3}, "subgroup_size applies"),
        ({"product_sku": "PUMP-A", "chart": "xbar_r", "parameter": "x", "subgroup_size": 26}, "xbar_s"),
        (
            {
                "product_sku": "PUMP-A",
                "chart": "xbar_s",
                "parameter": "x",
                "subgroup_size": 50,
                "limit": 10_000,
            },
            "limit * subgroup_size",
        ),
        ({"product_sku": "PUMP-A", "chart": "ewma", "parameter": "x", "lambda": 0}, "lambda"),
        ({"product_sku": "PUMP-A", "chart": "cusum", "parameter": "x", "h": 0}, "query.h"),
        ({"product_sku": "PUMP-A", "chart": "xbar", "parameter": "x"}, "query.chart"),
    ],
)
async def test_the_chart_query_is_validated(
    client: httpx.AsyncClient, params: dict[str, Any], message: str
) -> None:
    body = assert_problem(await client.get(CHART, params=params), 422)
    assert message in body["detail"], body["detail"]


async def test_a_chart_of_a_product_without_data_has_no_points(client: httpx.AsyncClient) -> None:
    for chart in ("imr", "xbar_r", "xbar_s", "ewma", "cusum"):
        body = await _chart(client, chart=chart, parameter="diameter_mm")
        assert all(chart["points"] == [] for chart in body["charts"]), chart


async def test_the_rule_catalogue_lists_every_rule_with_its_parameters(
    client_as: Callable[[str], Awaitable[httpx.AsyncClient]],
) -> None:
    viewer = await client_as("viewer")
    response = await viewer.get(RULES)
    assert response.status_code == 200
    items = response.json()["items"]
    ids = [item["id"] for item in items]
    assert ids == [*(f"N{i}" for i in range(1, 9)), *(f"WE{i}" for i in range(1, 5)), "EWMA", "CUSUM"]
    by_id = {item["id"]: item for item in items}
    assert by_id["N2"]["parameters"] == {"points": 9}
    assert by_id["N5"]["window"] == 3 and "xbar" in by_id["N5"]["charts"]
    assert by_id["EWMA"]["parameters"] == {"lambda": 0.2, "L": 3.0}
    assert by_id["CUSUM"]["charts"] == ["cusum_upper", "cusum_lower"]
    assert all(item["name"] and item["description"] and item["definition"] for item in items)
