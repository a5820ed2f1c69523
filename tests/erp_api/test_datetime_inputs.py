"""Every time a request can carry, at the edges of what a time can be: a 422 or an answer, never a 5xx.

The targets are found in the OpenAPI document (every query parameter and body field of format
date-time, in lists and alternatives too), so a new route with a time is tested as soon as it is
documented: a GET query parameter on its own, a body field through ``SENDERS``, which must name it
(the request around the time has to be valid for the time to reach the database).

A time is acceptable when it has a zone and its instant lies within years 1 to 9999 in UTC
(``erp_api.schemas.UtcDatetime``); then the answer is anything but a 5xx. Otherwise it is a 422 that
names the field. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from erp_api.app import create_app
from erp_api.http import API_PREFIX
from erp_api.openapi import build_openapi
from erp_api.settings import load_settings
from tests.charges.helpers import charge_payload, create, create_in
from tests.quality.helpers import given_spec, measurements_url

DOCUMENT = build_openapi(create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes)
Target = tuple[str, str, str]  # (operationId, "query" or "body", field: "a", "items[].a")


def _datetime_fields(schema: Mapping[str, Any], path: str, seen: tuple[str, ...] = ()) -> Iterator[str]:
    components = DOCUMENT["components"]["schemas"]
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[1]
        if name not in seen:
            yield from _datetime_fields(components[name], path, (*seen, name))
        return
    if schema.get("format") == "date-time":
        yield path
    for option in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
        yield from _datetime_fields(option, path, seen)
    if "items" in schema:
        yield from _datetime_fields(schema["items"], f"{path}[]", seen)
    for name, field in schema.get("properties", {}).items():
        yield from _datetime_fields(field, f"{path}.{name}" if path else name, seen)


def _targets() -> dict[Target, tuple[str, str]]:
    """Every date-time input of the document, with its operation's (method, path template)."""
    found: dict[Target, tuple[str, str]] = {}
    for template, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            where = (method.upper(), template)
            for parameter in operation.get("parameters", ()):
                for field in _datetime_fields(parameter["schema"], parameter["name"]):
                    found[(operation["operationId"], parameter["in"], field)] = where
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for field in _datetime_fields(body.get("schema", {}), ""):
                found[(operation["operationId"], "body", field)] = where
    return found


TARGETS = _targets()
LATEST = "9999-12-31T23:59:59.999999Z"
EARLIEST = "0001-01-01T00:00:00Z"
_serials = itertools.count(10_000)

Send = Callable[[httpx.AsyncClient, dict[str, int], str], Awaitable[httpx.Response]]


def _charges_batch(client: httpx.AsyncClient, _ids: dict[str, int], value: str) -> Awaitable[httpx.Response]:
    items = [charge_payload(next(_serials)), charge_payload(next(_serials), produced_at=value)]
    return client.post(f"{API_PREFIX}/charges/batch", json={"items": items})


def _limits(bound: str) -> Send:
    def send(client: httpx.AsyncClient, _ids: dict[str, int], value: str) -> Awaitable[httpx.Response]:
        body = {"from": EARLIEST, "to": value} if bound == "to" else {"from": value, "to": LATEST}
        return client.post(f"{API_PREFIX}/quality/specs/PUMP-A/diameter_mm/limits/compute", json=body)

    return send


SENDERS: dict[Target, Send] = {
    ("create_charge", "body", "produced_at"): lambda client, _ids, value: client.post(
        f"{API_PREFIX}/charges", json=charge_payload(next(_serials), produced_at=value)
    ),
    ("create_charges_batch", "body", "items[].produced_at"): _charges_batch,
    ("update_charge", "body", "produced_at"): lambda client, ids, value: client.patch(
        f"{API_PREFIX}/charges/{ids['planned']}", json={"produced_at": value}
    ),
    ("post_measurements", "body", "measured_at"): lambda client, ids, value: client.post(
        measurements_url(ids["measured"]),
        json={"parameter": "diameter_mm", "value": 10.0, "measured_at": value},
    ),
    ("post_measurements", "body", "items[].measured_at"): lambda client, ids, value: client.post(
        measurements_url(ids["measured"]),
        json={
            "items": [
                {"parameter": "diameter_mm", "value": 10.0},
                {"parameter": "diameter_mm", "value": 9.9, "measured_at": value},
            ]
        },
    ),
    ("post_inspection", "body", "inspected_at"): lambda client, ids, value: client.post(
        f"{API_PREFIX}/charges/{ids['measured']}/inspections",
        json={"characteristic": "scratches", "inspected": 50, "nonconforming": 3, "inspected_at": value},
    ),
    ("compute_limits", "body", "from"): _limits("from"),
    ("compute_limits", "body", "to"): _limits("to"),
}


def _sender(target: Target) -> Send:
    if target in SENDERS:
        return SENDERS[target]
    _operation, location, field = target
    method, template = TARGETS[target]
    assert location == "query" and method == "GET", f"add a sender for {target} to SENDERS"

    def send(client: httpx.AsyncClient, ids: dict[str, int], value: str) -> Awaitable[httpx.Response]:
        path = re.sub(r"{[^}]+}", str(ids["measured"]), template)
        return client.get(path, params={field: value})

    return send


def test_every_datetime_input_of_the_document_is_a_target() -> None:
    """The walk finds the known inputs (so it is walking), and every body input has a sender."""
    assert set(SENDERS) <= set(TARGETS)
    assert {("list_charges", "query", "produced_from"), ("summary", "query", "to")} <= set(TARGETS)
    for target in TARGETS:
        _sender(target)


@pytest.fixture
async def ids(client: httpx.AsyncClient) -> dict[str, int]:
    """A planned charge (to edit) and one in production with a spec for diameter_mm (to measure)."""
    await given_spec(client, "diameter_mm")
    return {
        "planned": (await create(client, 1))["id"],
        "measured": (await create_in(client, 2, "in_production"))["id"],
    }


# Offsets a real zone can have (pydantic accepts up to 23:59), near both ends of the calendar and in it.
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timedelta(minutes=m))
local_times = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2, 23, 59)),
    st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
)


def _text(local: datetime, offset: timedelta | None) -> str:
    if offset is None:
        return local.isoformat()
    return local.replace(tzinfo=timezone(offset)).isoformat()


def _acceptable(text: str) -> bool:
    try:
        at = datetime.fromisoformat(text)
        return at.tzinfo is not None and at.astimezone(UTC).tzinfo is UTC
    except (ValueError, OverflowError):
        return False


@pytest.mark.parametrize("target", sorted(TARGETS), ids=["/".join(target) for target in sorted(TARGETS)])
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(local=local_times, offset=st.none() | offsets)
@example(local=datetime(9999, 12, 31, 23, 59, 59), offset=timedelta(hours=-1))
@example(local=datetime(1, 1, 1), offset=timedelta(hours=14))
@example(local=datetime(9999, 12, 31, 23, 59, 59, 999999), offset=timedelta(0))
@example(local=datetime(1, 1, 1), offset=timedelta(0))
@example(local=datetime(1, 1, 1, 0, 0), offset=timedelta(minutes=1))
async def test_an_extreme_time_is_a_422_or_an_answer_never_a_5xx(
    client: httpx.AsyncClient, ids: dict[str, int], target: Target, local: datetime, offset: timedelta | None
) -> None:
    text = _text(local, offset)
    response = await _sender(target)(client, ids, text)
    assert response.status_code < 500, (target, text, response.text[:300])
    if not _acceptable(text):
        assert response.status_code == 422, (target, text, response.text[:300])
        name = target[2].rsplit(".", 1)[-1].removeprefix("[]")
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(field.endswith(name) for field in fields), (target, text, fields)
