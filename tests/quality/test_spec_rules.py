"""A spec's run rules (``erp_api/quality/spec_rules.py``) and how ``PUT /quality/specs/...`` sets them, with
``auto_hold``; and why a spec's unit cannot change under stored measurements."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from erp_api.quality.models import QualitySpec
from erp_api.quality.spc.rules import RULE_SETS
from erp_api.quality.spec_rules import rule_ids_of, rule_set_of, stored_rule_ids, unknown_rule_ids
from tests.charges.helpers import assert_problem
from tests.quality.helpers import SPECS, given_spec, measurement_ids, new_charge, post_series, put_spec, void


def spec(rules: str, rule_ids: str | None) -> QualitySpec:
    return QualitySpec(product_sku="P", parameter="x", unit="mm", usl=1.0, rules=rules, rule_ids=rule_ids)


# The rules of a spec ------------------------------------------------------------------------------


def test_a_spec_without_a_subset_checks_its_whole_rule_set() -> None:
    assert rule_ids_of(spec("nelson", None)) == RULE_SETS["nelson"]
    assert rule_ids_of(spec("western_electric", None)) == ("WE1", "WE2", "WE3", "WE4")


def test_a_subset_narrows_the_set_in_the_sets_order() -> None:
    assert rule_ids_of(spec("nelson", "N5,N1,N2")) == ("N1", "N2", "N5")
    assert rule_ids_of(spec("western_electric", "WE4")) == ("WE4",)


def test_a_rule_set_the_api_never_writes_falls_back_to_nelson() -> None:
    assert rule_set_of(spec("shewhart", None)) == "nelson"


def test_stored_subsets_are_in_set_order_and_unknown_ids_are_named() -> None:
    assert stored_rule_ids("nelson", ["N5", "N1", "N5"]) == "N1,N5"
    assert stored_rule_ids("nelson", None) is None
    assert unknown_rule_ids("nelson", ["N1", "WE1", "N9", "N9"]) == ["N9", "WE1"]
    assert unknown_rule_ids("western_electric", ["WE2"]) == []


# Through PUT /quality/specs ------------------------------------------------------------------------


async def test_a_new_spec_checks_every_nelson_rule_without_auto_hold(client: httpx.AsyncClient) -> None:
    created = (await put_spec(client, "PUMP-A", "diameter_mm", usl=25.1)).json()
    assert (created["rules"], created["rule_ids"], created["auto_hold"]) == ("nelson", None, False)


async def test_a_spec_carries_its_rule_set_subset_and_auto_hold_everywhere(client: httpx.AsyncClient) -> None:
    body = {"rules": "western_electric", "rule_ids": ["WE3", "WE1"], "auto_hold": True}
    response = await put_spec(client, "PUMP-A", "diameter_mm", usl=25.1, **body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["rules"], created["rule_ids"], created["auto_hold"]) == (
        "western_electric",
        ["WE1", "WE3"],
        True,
    )
    (listed,) = (await client.get(SPECS, params={"product_sku": "PUMP-A"})).json()["items"]
    assert listed == created

    # PUT replaces: what is left out returns to its default.
    replaced = (await put_spec(client, "PUMP-A", "diameter_mm", usl=25.1)).json()
    assert (replaced["rules"], replaced["rule_ids"], replaced["auto_hold"]) == ("nelson", None, False)
    trail = (await client.get("/api/v1/audit", params={"entity": "quality_spec"})).json()["items"]
    update = next(row for row in trail if row["action"] == "update")
    assert update["before"] == {"rules": "western_electric", "rule_ids": "WE1,WE3", "auto_hold": True}
    assert update["after"] == {"rules": "nelson", "rule_ids": None, "auto_hold": False}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"rule_ids": ["N1", "WE2"]}, "WE2"),
        ({"rule_ids": ["N9"]}, "N9"),
        ({"rules": "western_electric", "rule_ids": ["WE1", "N1", "N2"]}, "N1, N2"),
        ({"rule_ids": []}, None),
        ({"rule_ids": "N1"}, None),
        ({"rules": "shewhart"}, None),
        ({"auto_hold": "yes"}, None),
        ({"auto_hold": 1}, None),
    ],
)
async def test_rule_ids_outside_the_chosen_set_are_422_naming_them(
    client: httpx.AsyncClient, body: dict[str, Any], named: str | None
) -> None:
    problem = assert_problem(await put_spec(client, "PUMP-A", "diameter_mm", usl=25.1, **body), 422)
    if named is not None:
        assert named in problem["detail"]
    assert (await client.get(SPECS)).json()["items"] == []


async def test_a_unit_change_is_409_once_the_series_has_measurements(client: httpx.AsyncClient) -> None:
    await given_spec(client, "diameter_mm", usl=25.1)
    # Other products' series do not count.
    await given_spec(client, "diameter_mm", product_sku="VALVE-B", usl=25.1)
    other = await new_charge(client, 2, product_sku="VALVE-B")
    await post_series(client, other, "diameter_mm", [25.0])
    assert (await put_spec(client, "PUMP-A", "diameter_mm", unit="cm", usl=2.51)).status_code == 200
    assert (await put_spec(client, "PUMP-A", "diameter_mm", unit="mm", usl=25.1)).status_code == 200

    charge_id = await new_charge(client, 1)
    await post_series(client, charge_id, "diameter_mm", [25.0, 25.01, 24.99])
    for measurement_id in await measurement_ids(client, charge_id):
        await void(client, measurement_id)  # voided values are still stored in mm
    problem = assert_problem(await put_spec(client, "PUMP-A", "diameter_mm", unit="cm", usl=2.51), 409)
    assert problem["measurements"] == 3
    assert "3 measurement" in problem["detail"] and "new parameter" in problem["detail"]
    (listed,) = (await client.get(SPECS, params={"product_sku": "PUMP-A"})).json()["items"]
    assert (listed["unit"], listed["usl"]) == ("mm", 25.1)
    # The same unit with other limits is fine.
    assert (await put_spec(client, "PUMP-A", "diameter_mm", unit="mm", usl=26.0)).status_code == 200
