"""What the charge fields accept: real units, names in any script, quantities within their digits."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from erp_api.charges.schemas import ChargeCreate, LineName, ProductSku, Unit
from erp_api.http import API_PREFIX
from tests.charges.helpers import assert_problem, charge_payload
from tests.quality.helpers import SPECS

UNITS = TypeAdapter(Unit)
LINES = TypeAdapter(LineName)
SKUS = TypeAdapter(ProductSku)


@pytest.mark.parametrize(
    "unit", ["°C", "µm", "μm", "mPa·s", "%RH", "pcs", "kg/m³", "N·m", "1/min", "Ω", "m s⁻¹", "x" * 16]
)
def test_a_unit_is_any_printable_text_up_to_16_characters(unit: str) -> None:
    assert UNITS.validate_python(unit) == unit


@pytest.mark.parametrize(
    "unit",
    ["", "x" * 17, "\x00", "mm\n", "°C\t", "\x7f", "\x85", "a\u200bb", "\u2028", " mm", "mm ", "\ud800"],
    ids=repr,
)
def test_a_unit_with_control_or_invisible_characters_or_outer_spaces_is_refused(unit: str) -> None:
    with pytest.raises(ValidationError):
        UNITS.validate_python(unit)


@pytest.mark.parametrize("line", ["Linie Süd", "L1", "Halle 3/Linie 2", "ライン1", "Straße-7_b.2", "٣"])
def test_a_line_name_is_letters_and_digits_of_any_script_with_space_and_dash_underscore_dot_slash(
    line: str,
) -> None:
    assert LINES.validate_python(line) == line


@pytest.mark.parametrize(
    "line", ["", " L1", "-L1", "L1\n", "L1;drop", "Linie <3>", "L" * 33, "L\u200b1"], ids=repr
)
def test_other_line_names_are_refused(line: str) -> None:
    with pytest.raises(ValidationError):
        LINES.validate_python(line)


def test_names_are_stored_in_composed_form_so_both_spellings_are_one_line() -> None:
    decomposed = "Linie Su\u0308d"
    assert LINES.validate_python(decomposed) == "Linie Süd"
    assert SKUS.validate_python("Pumpe-Gro\u0301ß") == "Pumpe-Gróß"


def test_a_product_sku_takes_any_script_but_no_slash_as_it_is_a_path_segment() -> None:
    assert SKUS.validate_python("Pumpe Größe 2") == "Pumpe Größe 2"
    with pytest.raises(ValidationError):
        SKUS.validate_python("PUMP/A")


@pytest.mark.parametrize("quantity", ["0.001", "999999999999999.999", "1250.5", 1, 1250.5])
def test_a_quantity_has_at_most_15_digits_before_the_point_and_3_after(quantity: Any) -> None:
    ChargeCreate.model_validate_json(orjson.dumps({**charge_payload(1), "quantity": quantity}))


@pytest.mark.parametrize(
    "quantity", ["0", "-1", "0.0001", "1000000000000000", "NaN", "Infinity", 0, 1e16, True]
)
def test_other_quantities_are_refused(quantity: Any) -> None:
    with pytest.raises(ValidationError):
        ChargeCreate.model_validate_json(orjson.dumps({**charge_payload(1), "quantity": quantity}))


async def test_real_units_and_line_names_are_accepted_end_to_end(client: httpx.AsyncClient) -> None:
    payload = charge_payload(1, unit="mPa·s", line="Linie Süd", product_sku="Öl-Pumpe")
    created = await client.post(f"{API_PREFIX}/charges", json=payload)
    assert created.status_code == 201, created.text
    assert (created.json()["unit"], created.json()["line"]) == ("mPa·s", "Linie Süd")
    listed = await client.get(f"{API_PREFIX}/charges", params={"line": "Linie Su\u0308d"})
    assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
    for index, unit in enumerate(("°C", "µm", "%RH")):
        spec = await client.put(f"{SPECS}/Öl-Pumpe/parameter_{index}", json={"unit": unit, "usl": 90.0})
        assert spec.status_code == 201, spec.text
        assert spec.json()["unit"] == unit
    for unit in ("\x00", "°C\n"):
        assert_problem(await client.put(f"{SPECS}/Öl-Pumpe/other", json={"unit": unit, "usl": 1.0}), 422)
        assert_problem(
            await client.post(f"{API_PREFIX}/charges", json={**charge_payload(2), "unit": unit}), 422
        )
