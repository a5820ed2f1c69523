"""GET /quality/summary: statistics and capability per product and parameter, and its cache."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.charges.helpers import assert_problem
from tests.quality.helpers import (
    SUMMARY,
    T0,
    at,
    given_spec,
    measurements_url,
    new_charge,
    post_one,
    put_spec,
    store_without_spec,
)

# Values in time order, posted in a different order so that only a time-ordered moving range matches.
SERIES = [25.00, 25.02, 24.99, 25.03, 24.98, 25.01, 25.04, 24.97]
POST_ORDER = [3, 0, 6, 1, 7, 4, 2, 5]


def moving_range_mean(values: list[float]) -> float:
    return statistics.mean(abs(b - a) for a, b in itertools.pairwise(values))


def c4(m: int) -> float:
    return math.sqrt(2 / (m - 1)) * math.exp(math.lgamma(m / 2) - math.lgamma((m - 1) / 2))


def pooled_sigma(groups: list[list[float]]) -> float:
    """The pooled within-charge standard deviation / c4(d + 1), d = sum (n_i - 1) > 0."""
    squares = sum(sum((x - statistics.mean(group)) ** 2 for x in group) for group in groups)
    degrees = sum(len(group) - 1 for group in groups)
    return math.sqrt(squares / degrees) / c4(degrees + 1)


def expected(
    values: list[float], lsl: float | None, usl: float | None, charges: list[int] | None = None
) -> dict[str, Any]:
    """Every number of a summary row computed by hand from the series in time order; sigma within
    pooled over the charges (``charges[i]`` is the charge of ``values[i]``; one charge if not given)."""
    mean = statistics.mean(values)
    std = statistics.stdev(values)
    owners = charges or [0] * len(values)
    groups = [
        [v for v, c in zip(values, owners, strict=True) if c == charge] for charge in dict.fromkeys(owners)
    ]
    sigma_within = pooled_sigma(groups)

    def indices(sigma: float) -> tuple[float | None, float | None]:
        sides = ([(usl - mean) / (3 * sigma)] if usl is not None else []) + (
            [(mean - lsl) / (3 * sigma)] if lsl is not None else []
        )
        potential = (usl - lsl) / (6 * sigma) if lsl is not None and usl is not None else None
        return potential, min(sides) if sides else None

    cp, cpk = indices(sigma_within)
    pp, ppk = indices(std)
    outside = sum((lsl is not None and v < lsl) or (usl is not None and v > usl) for v in values)
    return {
        "n": len(values),
        "mean": mean,
        "std": std,
        "min": min(values),
        "max": max(values),
        "lsl": lsl,
        "usl": usl,
        "out_of_spec": outside,
        "sigma_within": sigma_within,
        "sigma_within_method": "pooled_sd",
        "sigma_overall": std,
        "cp": cp,
        "cpk": cpk,
        "pp": pp,
        "ppk": ppk,
    }


def assert_row(row: dict[str, Any], want: dict[str, Any]) -> None:
    for name, value in want.items():
        assert row[name] == (
            value if value is None or isinstance(value, int | str) else pytest.approx(value, rel=1e-9)
        ), name


async def _post_shuffled(client: httpx.AsyncClient, charge_id: int, parameter: str = "diameter_mm") -> None:
    items = [{"parameter": parameter, "value": SERIES[i], "measured_at": at(i)} for i in POST_ORDER]
    response = await client.post(measurements_url(charge_id), json={"items": items})
    assert response.status_code == 201, response.text


async def _summary(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(SUMMARY, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_summary_matches_hand_computed_statistics_with_a_two_sided_spec(
    client: httpx.AsyncClient,
) -> None:
    # The test means something only if the order the values were posted in gives another MR-bar.
    assert moving_range_mean([SERIES[i] for i in POST_ORDER]) != pytest.approx(moving_range_mean(SERIES))
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.98, usl=25.03, target=25.0)
    charge_id = await new_charge(client, 1)
    await _post_shuffled(client, charge_id)
    (row,) = await _summary(client, product_sku="PUMP-A")
    assert (row["product_sku"], row["parameter"]) == ("PUMP-A", "diameter_mm")
    want = expected(SERIES, 24.98, 25.03)
    assert want["out_of_spec"] == 2
    assert_row(row, want)


async def test_one_sided_spec_gives_only_cpk_and_ppk(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", usl=25.05)
    charge_id = await new_charge(client, 1)
    await _post_shuffled(client, charge_id)
    (row,) = await _summary(client)
    want = expected(SERIES, None, 25.05)
    assert want["cp"] is None and want["pp"] is None
    assert_row(row, want)


async def test_without_spec_or_with_one_point_the_indices_are_null(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await new_charge(client, 1)
    await store_without_spec(sessions, charge_id, "diameter_mm", {i: SERIES[i] for i in POST_ORDER})
    await put_spec(client, "PUMP-A", "weight_g", lsl=10.0, usl=20.0)
    assert (await post_one(client, charge_id, "weight_g", 12.5, measured_at=at(0))).status_code == 201
    rows = {row["parameter"]: row for row in await _summary(client)}
    diameter = rows["diameter_mm"]
    assert (diameter["lsl"], diameter["usl"], diameter["out_of_spec"]) == (None, None, 0)
    assert [diameter[k] for k in ("cp", "cpk", "pp", "ppk")] == [None] * 4
    assert diameter["std"] == pytest.approx(statistics.stdev(SERIES), rel=1e-9)
    weight = rows["weight_g"]
    assert (weight["n"], weight["mean"], weight["std"], weight["min"], weight["max"]) == (
        1,
        12.5,
        None,
        12.5,
        12.5,
    )
    assert [weight[k] for k in ("cp", "cpk", "pp", "ppk")] == [None] * 4


async def test_series_of_a_product_joins_its_charges_in_time_order(client: httpx.AsyncClient) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.9, usl=25.1)
    first, second = await new_charge(client, 1), await new_charge(client, 2)
    other = await new_charge(client, 3, product_sku="VALVE-B")
    await given_spec(client, "diameter_mm", product_sku="VALVE-B")
    for index, value in enumerate(SERIES):
        charge_id = first if index % 2 else second
        response = await post_one(client, charge_id, "diameter_mm", value, measured_at=at(index))
        assert response.status_code == 201
    await post_one(client, other, "diameter_mm", 99.0, measured_at=at(0))
    rows = await _summary(client)
    assert [(row["product_sku"], row["n"]) for row in rows] == [("PUMP-A", 8), ("VALVE-B", 1)]
    assert_row(rows[0], expected(SERIES, 24.9, 25.1, charges=[i % 2 for i in range(len(SERIES))]))


async def test_filters_by_parameter_and_half_open_time_range(client: httpx.AsyncClient) -> None:
    charge_id = await new_charge(client, 1)
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.98, usl=25.03)
    await given_spec(client, "weight_g")
    await _post_shuffled(client, charge_id)
    await _post_shuffled(client, charge_id, parameter="weight_g")
    window = {"from": at(2), "to": at(6), "parameter": "diameter_mm"}
    (row,) = await _summary(client, **window)
    assert row["parameter"] == "diameter_mm"
    assert_row(row, expected(SERIES[2:6], 24.98, 25.03))
    assert await _summary(client, product_sku="NOTHING") == []
    assert await _summary(client, **{"from": at(100)}) == []


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-04-01T07:00:00+00:00", "to": "2026-04-01T06:00:00+00:00"},
        {"from": "2026-04-01T06:00:00+00:00", "to": "2026-04-01T06:00:00+00:00"},
        {"from": "2026-04-01T06:00:00"},
        {"parameter": "Not-A-Name"},
        {"product_sku": "bad;sku"},
        {"since": T0.isoformat()},
    ],
)
async def test_summary_query_is_validated(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert_problem(await client.get(SUMMARY, params=params), 422)


async def test_new_measurement_and_spec_change_invalidate_the_cached_summary(
    client: httpx.AsyncClient,
) -> None:
    await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.98, usl=25.03)
    charge_id = await new_charge(client, 1)
    await _post_shuffled(client, charge_id)
    for params in ({"product_sku": "PUMP-A"}, {}):
        assert [row["n"] for row in await _summary(client, **params)] == [8]
        assert [row["n"] for row in await _summary(client, **params)] == [8]

    assert (await post_one(client, charge_id, "diameter_mm", 25.10, measured_at=at(50))).status_code == 201
    for params in ({"product_sku": "PUMP-A"}, {}):
        (row,) = await _summary(client, **params)
        assert (row["n"], row["max"], row["out_of_spec"]) == (9, 25.10, 3)

    assert (await put_spec(client, "PUMP-A", "diameter_mm", lsl=24.0, usl=26.0)).status_code == 200
    for params in ({"product_sku": "PUMP-A"}, {}):
        (row,) = await _summary(client, **params)
        assert (row["lsl"], row["usl"], row["out_of_spec"]) == (24.0, 26.0, 0)


async def test_a_charge_with_measurements_is_not_deleted_and_stays_in_the_summary(
    client: httpx.AsyncClient,
) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "diameter_mm")
    await _post_shuffled(client, charge_id)
    assert [row["n"] for row in await _summary(client, product_sku="PUMP-A")] == [8]
    assert_problem(await client.delete(f"/api/v1/charges/{charge_id}"), 409)
    assert [row["n"] for row in await _summary(client, product_sku="PUMP-A")] == [8]
    assert [row["n"] for row in await _summary(client)] == [8]
