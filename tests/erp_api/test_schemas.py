"""The request-model bases: bodies are strict, query strings coerce from text, both refuse unknown fields;
the one type of request times; named schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import pytest
from pydantic import ValidationError

from erp_api.schemas import QueryModel, SchemaName, StrictBody, UtcDatetime


class Body(StrictBody):
    count: int
    name: str


class Query(QueryModel):
    count: int = 1


def test_a_body_takes_json_values_of_the_declared_type() -> None:
    assert Body.model_validate_json(b'{"count": 5, "name": "a"}') == Body(count=5, name="a")


@pytest.mark.parametrize(
    "body", [b'{"count": "5", "name": "a"}', b'{"count": 5, "name": 1}', b'{"count": 5.0, "name": "a"}']
)
def test_a_body_does_not_coerce_between_json_types(body: bytes) -> None:
    with pytest.raises(ValidationError):
        Body.model_validate_json(body)


def test_a_query_coerces_its_text_values() -> None:
    assert Query.model_validate({"count": "5"}).count == 5


@pytest.mark.parametrize(
    ("model", "values"), [(Body, {"count": 1, "name": "a", "extra": 1}), (Query, {"other": "1"})]
)
def test_unknown_fields_are_refused(model: type[StrictBody | QueryModel], values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(values)


def test_validated_requests_are_immutable() -> None:
    query = Query.model_validate({"count": "2"})
    with pytest.raises(ValidationError):
        query.count = 3  # type: ignore[misc]


class Times(QueryModel):
    at: UtcDatetime


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-03-01T07:30:00+01:00", datetime(2026, 3, 1, 6, 30, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T23:59:00+23:59", datetime(1, 1, 1, 0, 0, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("9999-12-31T00:00:00-23:59", datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_a_time_is_taken_as_its_instant_in_utc(text: str, utc: datetime) -> None:
    at = Times.model_validate({"at": text}).at
    assert at == utc and at.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+00:01",
        "2026-03-01T06:00:00",
    ],
)
def test_a_time_outside_years_1_to_9999_in_utc_or_without_a_zone_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Times.model_validate({"at": text})
    assert raised.value.errors()[0]["loc"] == ("at",)


def test_a_type_marked_with_a_schema_name_is_one_referenced_schema() -> None:
    Colour = Annotated[Literal["red", "green"], SchemaName("Colour")]

    class Paint(QueryModel):
        inside: Colour
        outside: Colour | None = None

    schema = Paint.model_json_schema()
    assert schema["$defs"] == {"Colour": {"enum": ["red", "green"], "type": "string"}}
    assert schema["properties"]["inside"] == {"$ref": "#/$defs/Colour"}
    assert Paint.model_validate({"inside": "red"}).inside == "red"
    with pytest.raises(ValidationError):
        Paint.model_validate({"inside": "blue"})
