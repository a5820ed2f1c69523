"""The exports over HTTP on SQLite and PostgreSQL: what they hold, how it is written, what selects it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.quality.models import Measurement
from tests.charges.helpers import assert_problem
from tests.exports.helpers import (
    BOM,
    EXPORTS,
    T0,
    csv_records,
    ndjson_records,
    store_alerts,
    store_charges,
    store_measurements,
)

Sessions = async_sessionmaker[AsyncSession]
ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]
CHARGE_FIELDS = [
    "id",
    "charge_number",
    "product_sku",
    "quantity",
    "unit",
    "line",
    "status",
    "produced_at",
    "created_at",
    "updated_at",
    "version",
]


async def test_a_spreadsheet_hostile_charge_round_trips_through_a_csv_reader(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    hostile = {"line": 'Linie "Süd", 3', "unit": "m\r\n²", "product_sku": "PUMP;A"}
    (charge_id,) = await store_charges(sessions, hostile)

    response = await client.get(f"{EXPORTS}/charges.csv")

    assert response.content.startswith(BOM.encode())
    lines = response.content.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ",".join(CHARGE_FIELDS)
    records = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert records[0] == CHARGE_FIELDS
    assert records[1] == [
        str(charge_id),
        "CH-2026-000001",
        "PUMP;A",
        "125.500",
        "m\r\n²",
        'Linie "Süd", 3',
        "planned",
        "2026-03-01T06:00:00+00:00",
        "2026-03-01T05:00:00+00:00",
        "2026-03-01T05:00:00+00:00",
        "1",
    ]
    assert len(records) == 2
    # RFC 4180: quoted only where needed, quotes doubled, CRLF after each record (the last too).
    assert lines[1].startswith(f'{charge_id},CH-2026-000001,PUMP;A,125.500,"m')
    assert ',"Linie ""Süd"", 3",planned,' in response.content.decode("utf-8-sig")
    assert response.content.endswith(b"\r\n")


async def test_text_that_a_spreadsheet_would_evaluate_is_prefixed_with_a_quote(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    await store_charges(
        sessions,
        {"unit": "=1+2", "line": "+SUM(A1)"},
        {"unit": "-2", "line": "@cmd"},
        {"unit": "\tpcs", "line": "L-1=2"},
    )
    records = csv_records(await client.get(f"{EXPORTS}/charges.csv"))
    assert [(r["unit"], r["line"]) for r in records] == [
        ("'=1+2", "'+SUM(A1)"),
        ("'-2", "'@cmd"),
        ("'\tpcs", "L-1=2"),
    ]


async def test_csv_leaves_out_the_byte_order_mark_when_asked(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    await store_charges(sessions, {})
    response = await client.get(f"{EXPORTS}/charges.csv", params={"bom": "false"})
    assert response.content.startswith(b"id,charge_number,")


async def test_exports_are_attachments_named_after_what_and_when(client: httpx.AsyncClient) -> None:
    expected_types = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
    for name in ("charges", "alerts"):
        for extension, media_type in expected_types.items():
            response = await client.get(f"{EXPORTS}/{name}.{extension}")
            assert response.status_code == 200
            assert response.headers["content-type"] == media_type
            assert re.fullmatch(
                rf'attachment; filename="{name}-\d{{8}}T\d{{6}}Z\.{extension}"',
                response.headers["content-disposition"],
            )
            assert response.headers["cache-control"] == "no-store"


async def test_an_empty_export_is_the_header_row_alone(client: httpx.AsyncClient) -> None:
    csv_response = await client.get(f"{EXPORTS}/charges.csv", params={"bom": "false"})
    assert csv_response.content == (",".join(CHARGE_FIELDS) + "\r\n").encode()
    assert (await client.get(f"{EXPORTS}/charges.ndjson")).content == b""


async def test_every_charge_is_exported_once_oldest_first_across_chunks(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    # Ties in production time are ordered by id, also where a chunk (2 rows here) ends inside them.
    same_time = {"produced_at": T0}
    ids = await store_charges(
        sessions, {}, same_time, same_time, same_time, {"produced_at": T0 - timedelta(days=1)}
    )
    records = csv_records(await client.get(f"{EXPORTS}/charges.csv"))
    assert [int(r["id"]) for r in records] == [ids[4], ids[1], ids[2], ids[3], ids[0]]


async def test_ndjson_lines_are_the_charges_as_the_api_shows_them(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    ids = await store_charges(sessions, {"line": "Linie Süd"}, {"quantity": "0.001"}, {})
    records = ndjson_records(await client.get(f"{EXPORTS}/charges.ndjson"))
    assert [record["id"] for record in records] == ids
    for record in records:
        assert list(record) == CHARGE_FIELDS
        assert record == (await client.get(f"{API_PREFIX}/charges/{record['id']}")).json()


async def test_charge_filters_select_what_the_charge_list_selects(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    await store_charges(
        sessions,
        {"status": "released", "product_sku": "PUMP-A", "line": "L1"},
        {"status": "rejected", "product_sku": "PUMP-A", "line": "L2"},
        {"status": "planned", "product_sku": "PUMP-B", "line": "L1"},
        {"status": "released", "product_sku": "PUMP-B", "line": "L2", "charge_number": "XY-0001"},
        {"status": "quarantined", "product_sku": "PUMP-A", "line": "L1", "charge_number": "CH-2027-000001"},
    )
    filters: list[dict[str, str | list[str]]] = [
        {"status": ["released", "rejected"]},
        {"status": "quarantined"},
        {"product_sku": "PUMP-B"},
        {"line": "L1", "product_sku": "PUMP-A"},
        {"number_prefix": "ch-2026-"},
        {"number_prefix": "XY"},
        {
            "produced_from": (T0 + timedelta(hours=2)).isoformat(),
            "produced_to": (T0 + timedelta(hours=4)).isoformat(),
        },
    ]
    for params in filters:
        listed = (await client.get(f"{API_PREFIX}/charges", params={**params, "sort": "produced_at"})).json()
        exported = ndjson_records(await client.get(f"{EXPORTS}/charges.ndjson", params=params))
        assert exported == listed["items"], params
        assert exported, params


async def test_measurements_of_a_charge_are_exported_by_parameter_then_time_with_the_charge_number(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    charge_id, other = await store_charges(sessions, {}, {})
    weight, d2, d1, d3 = await store_measurements(
        sessions,
        charge_id,
        "PUMP-A",
        {"parameter": "weight_g", "value": 2500.0},
        {"value": -2.5, "measured_at": T0 + timedelta(minutes=2)},
        {"value": 1.5e-7, "measured_at": T0 + timedelta(minutes=1)},
        {"value": 1e15, "measured_at": T0 + timedelta(minutes=3)},
    )
    await store_measurements(sessions, other, "PUMP-A", {})

    records = csv_records(await client.get(f"{EXPORTS}/measurements.csv", params={"charge_id": charge_id}))

    assert [int(r["id"]) for r in records] == [d1, d2, d3, weight]
    assert {r["charge_number"] for r in records} == {"CH-2026-000001"}
    # Plain decimal notation, a negative value a number (no formula guard on numbers).
    assert [r["value"] for r in records] == ["0.00000015", "-2.5", "1000000000000000.0", "2500.0"]
    assert records[0] == {
        "id": str(d1),
        "charge_id": str(charge_id),
        "charge_number": "CH-2026-000001",
        "product_sku": "PUMP-A",
        "parameter": "diameter_mm",
        "value": "0.00000015",
        "measured_at": "2026-03-01T05:01:00+00:00",
        "created_at": "2026-03-01T05:00:00+00:00",
        "voided": "false",
        "voided_at": "",
        "void_reason": "",
        "voided_by": "",
    }
    by_parameter = csv_records(
        await client.get(
            f"{EXPORTS}/measurements.csv", params={"charge_id": charge_id, "parameter": "weight_g"}
        )
    )
    assert [int(r["id"]) for r in by_parameter] == [weight]


async def test_measurements_of_a_product_are_selected_by_parameter_and_time_range(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    first, second, other_product = await store_charges(sessions, {}, {}, {"product_sku": "PUMP-B"})
    a = await store_measurements(sessions, first, "PUMP-A", {}, {}, {})
    b = await store_measurements(sessions, second, "PUMP-A", {}, {}, {"parameter": "weight_g"})
    await store_measurements(sessions, other_product, "PUMP-B", {}, {})

    everything = ndjson_records(
        await client.get(f"{EXPORTS}/measurements.ndjson", params={"product_sku": "PUMP-A"})
    )
    # diameter_mm before weight_g; within a parameter by time, then id.
    assert [r["id"] for r in everything] == [a[0], b[0], a[1], b[1], a[2], b[2]]
    ranged = ndjson_records(
        await client.get(
            f"{EXPORTS}/measurements.ndjson",
            params={
                "product_sku": "PUMP-A",
                "parameter": "diameter_mm",
                "measured_from": (T0 + timedelta(minutes=1)).isoformat(),
                "measured_to": (T0 + timedelta(minutes=2)).isoformat(),
            },
        )
    )
    assert [r["id"] for r in ranged] == [a[1], b[1]]
    assert ranged[0]["value"] == 80.0 and ranged[0]["measured_at"] == "2026-03-01T05:01:00+00:00"


async def test_voided_measurements_are_exported_only_when_asked_and_marked(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    (charge_id,) = await store_charges(sessions, {})
    kept, voided = await store_measurements(sessions, charge_id, "PUMP-A", {}, {})
    async with sessions.begin() as session:
        await session.execute(
            update(Measurement)
            .where(Measurement.id == voided)
            .values(voided_at=T0 + timedelta(hours=1), void_reason='wrong gauge, "G7"', voided_by="=Q. M.")
        )
    url = f"{EXPORTS}/measurements.csv"
    assert [int(r["id"]) for r in csv_records(await client.get(url, params={"charge_id": charge_id}))] == [
        kept
    ]
    records = csv_records(await client.get(url, params={"charge_id": charge_id, "include_voided": "true"}))
    assert [(int(r["id"]), r["voided"]) for r in records] == [(kept, "false"), (voided, "true")]
    assert records[1]["voided_at"] == "2026-03-01T06:00:00+00:00"
    assert records[1]["void_reason"] == 'wrong gauge, "G7"'
    assert records[1]["voided_by"] == "'=Q. M."


async def test_a_measurement_export_needs_a_charge_or_a_product(client: httpx.AsyncClient) -> None:
    for params in ({}, {"parameter": "diameter_mm"}):
        body = assert_problem(await client.get(f"{EXPORTS}/measurements.csv", params=params), 422)
        assert "charge_id or a product_sku" in body["detail"]
    backwards = {"product_sku": "PUMP-A", "measured_from": T0.isoformat(), "measured_to": T0.isoformat()}
    assert_problem(await client.get(f"{EXPORTS}/measurements.ndjson", params=backwards), 422)


async def test_filters_are_validated_like_the_lists(client: httpx.AsyncClient) -> None:
    for url, params in [
        (f"{EXPORTS}/charges.csv", {"status": "shipped"}),
        (f"{EXPORTS}/charges.csv", {"produced_from": "9999-12-31T23:59:59-01:00"}),
        (f"{EXPORTS}/charges.ndjson", {"bom": "false"}),  # bom is a CSV option only
        (f"{EXPORTS}/alerts.csv", {"charge_id": str(2**63)}),
        (f"{EXPORTS}/alerts.ndjson", {"rule": "NOPE"}),
        (f"{EXPORTS}/charges.csv", {"unknown": "1"}),
    ]:
        assert_problem(await client.get(url, params=params), 422)


async def test_alerts_are_exported_oldest_first_with_their_limits(
    client: httpx.AsyncClient, sessions: Sessions
) -> None:
    charge_id, other = await store_charges(sessions, {}, {})
    first, second, third = await store_alerts(
        sessions,
        charge_id,
        {"measurement_ids": [7, 8, 9], "reason": "tool wear, line 2", "changed_by": "Q. M."},
        {"status": "resolved", "rule": "N2"},
        {"parameter": "weight_g"},
    )
    (elsewhere,) = await store_alerts(sessions, other, {"measurement_id": 99, "product_sku": "PUMP-B"})

    records = csv_records(await client.get(f"{EXPORTS}/alerts.csv"))
    assert [int(r["id"]) for r in records] == [first, second, third, elsewhere]
    assert records[0]["measurement_ids"] == "7 8 9"
    assert (records[0]["center"], records[0]["sigma"], records[0]["lcl"], records[0]["ucl"]) == (
        "10.0",
        "1.0",
        "7.0",
        "13.0",
    )
    assert records[0]["reason"] == "tool wear, line 2"
    listed = ndjson_records(await client.get(f"{EXPORTS}/alerts.ndjson", params={"charge_id": charge_id}))
    api = {
        a["id"]: a
        for a in (await client.get(f"{API_PREFIX}/quality/alerts", params={"charge_id": charge_id})).json()[
            "items"
        ]
    }
    for record in listed:
        alert = api[record["id"]]
        assert record["measurement_ids"] == alert["measurement_ids"]
        assert (record["lcl"], record["ucl"]) == (alert["limits"]["lcl"], alert["limits"]["ucl"])
        assert {k: v for k, v in record.items() if k in alert} == {k: alert[k] for k in record if k in alert}
    cases: list[tuple[dict[str, str | list[str]], list[int]]] = [
        ({"status": ["open", "resolved"]}, [first, second, third, elsewhere]),
        ({"status": "resolved"}, [second]),
        ({"rule": "N2"}, [second]),
        ({"product_sku": "PUMP-A", "parameter": "weight_g"}, [third]),
        ({"charge_id": str(other)}, [elsewhere]),
    ]
    for params, expected in cases:
        exported = ndjson_records(await client.get(f"{EXPORTS}/alerts.ndjson", params=params))
        assert [r["id"] for r in exported] == expected, params


async def test_a_viewer_may_export(client_as: ClientAs, sessions: Sessions) -> None:
    await store_charges(sessions, {})
    viewer = await client_as("viewer")
    assert len(csv_records(await viewer.get(f"{EXPORTS}/charges.csv"))) == 1


async def test_head_answers_the_headers_alone(client: httpx.AsyncClient, sessions: Sessions) -> None:
    await store_charges(sessions, {})
    response = await client.head(f"{EXPORTS}/charges.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content == b""
