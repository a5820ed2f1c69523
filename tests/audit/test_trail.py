"""The audit trail: every charge write records who, what, before/after and the request, in its transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from erp_api.audit import trail as audit
from erp_api.audit.repository import AuditRepository
from erp_api.http import API_PREFIX
from erp_api.security.principal import Principal, bind_principal, reset_principal
from erp_api.security.roles import Role
from erp_api.security.services import BOOTSTRAP_KEY_NAME
from tests.charges.helpers import assert_problem, charge_payload, create
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http

API = f"{API_PREFIX}/charges"


async def trail(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/audit", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_create_records_the_actor_the_new_values_and_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(API, json=charge_payload(1), headers={"X-Request-ID": "req-create-0001"})
    charge = response.json()
    (event,) = await trail(client, entity="charge", id=str(charge["id"]))
    assert event["action"] == "create"
    assert event["actor"]["name"] == BOOTSTRAP_KEY_NAME and event["actor"]["role"] == "admin"
    assert event["actor"]["key_id"] is not None
    assert event["request_id"] == "req-create-0001" == response.headers["x-request-id"]
    assert event["before"] is None
    assert event["after"]["charge_number"] == "CH-2026-000001"
    assert event["after"]["quantity"] == "125.500"


async def test_the_actor_is_whoever_holds_the_key(
    client: httpx.AsyncClient, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    operator = await client_as("operator")
    charge = await create(operator, 1)
    (event,) = await trail(client, entity="charge", id=str(charge["id"]))
    assert (event["actor"]["name"], event["actor"]["role"]) == ("test operator", "operator")


async def test_a_batch_records_one_row_per_charge_with_one_request_id(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/batch", json={"items": [charge_payload(n) for n in range(1, 4)]})
    assert response.status_code == 201
    events = await trail(client, entity="charge")
    assert sorted(int(e["entity_id"]) for e in events) == sorted(
        item["id"] for item in response.json()["items"]
    )
    assert {e["request_id"] for e in events} == {response.headers["x-request-id"]}
    assert {e["action"] for e in events} == {"create"}


async def test_update_transition_and_delete_record_only_what_changed(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    assert (await client.patch(url, json={"line": "L9"})).status_code == 200
    transition_body = {"to": "in_production", "reason": "line 1 started"}
    assert (await client.post(f"{url}/transitions", json=transition_body)).status_code == 200
    second = await create(client, 2)
    assert (await client.delete(f"{API}/{second['id']}")).status_code == 204

    transition, update, _create = await trail(client, entity="charge", id=str(charge["id"]))
    assert update["action"] == "update"
    assert update["before"] == {"line": "L1", "version": 1}
    assert update["after"] == {"line": "L9", "version": 2}
    assert transition["action"] == "transition"
    assert transition["before"] == {"status": "planned", "version": 2}
    assert transition["after"] == {"status": "in_production", "version": 3, "reason": "line 1 started"}
    deleted, _created = await trail(client, entity="charge", id=str(second["id"]))
    assert deleted["action"] == "delete"
    assert deleted["before"]["charge_number"] == "CH-2026-000002" and deleted["after"] is None


async def test_a_refused_write_leaves_no_audit_row(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    url = f"{API}/{charge['id']}"
    assert_problem(await client.post(API, json=charge_payload(1)), 409)
    assert_problem(await client.patch(url, json={"line": "L2"}, headers={"If-Match": '"c1v99"'}), 412)
    assert_problem(await client.post(f"{url}/transitions", json={"to": "released"}), 409)
    batch = {"items": [charge_payload(5), charge_payload(1)]}
    assert_problem(await client.post(f"{API}/batch", json=batch), 409)
    assert [e["action"] for e in await trail(client, entity="charge")] == ["create"]


async def test_a_failing_audit_insert_rolls_the_change_back_and_the_500_tells_nothing(serve: Serve) -> None:
    async with serve() as app, http(app, TEST_ADMIN_KEY, raise_app_exceptions=False) as admin:
        async with app.state.resources.engine.begin() as connection:
            await connection.execute(text("DROP TABLE audit_events"))
        response = await admin.post(API, json=charge_payload(1))
        problem = assert_problem(response, 500)
        assert problem["detail"] == "The server could not complete the request; it has been logged."
        for leak in ("audit_events", "INSERT", "sqlite", "Traceback", 'File "'):
            assert leak not in response.text
        assert (await admin.get(API)).json()["items"] == [], "the charge was rolled back with its audit row"


async def test_the_trail_is_paged_newest_first(client: httpx.AsyncClient) -> None:
    for serial in range(1, 6):
        await create(client, serial)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"entity": "charge", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/audit", params=params)).json()
        seen += [event["id"] for event in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)


async def test_bad_audit_queries_are_422(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/audit", params={"id": "1"}), 422)
    assert_problem(await client.get("/api/v1/audit", params={"cursor": "nonsense"}), 422)
    assert_problem(await client.get("/api/v1/audit", params={"limit": 1000}), 422)


async def test_quality_managers_read_the_trail_and_operators_do_not(
    client_as: Callable[[str], Awaitable[httpx.AsyncClient]],
) -> None:
    assert (await (await client_as("quality_manager")).get("/api/v1/audit")).status_code == 200
    assert_problem(await (await client_as("operator")).get("/api/v1/audit"), 403)


async def test_outside_a_request_changes_are_attributed_to_the_system(app: Starlette) -> None:
    async with app.state.resources.sessions.begin() as session:
        await audit.record(session, entity="job", entity_id="reaper", action="run", after={"requeued": 2})
    token = bind_principal(Principal(7, "nightly import", Role.OPERATOR))
    try:
        async with app.state.resources.sessions.begin() as session:
            await audit.record(session, entity="job", entity_id="import", action="run")
    finally:
        reset_principal(token)
    async with app.state.resources.sessions() as session:
        rows = await AuditRepository(session).events(entity="job", entity_id=None, before_id=None, limit=10)
    assert [(row.actor_name, row.actor_key_id, row.request_id) for row in rows] == [
        ("nightly import", 7, None),
        ("system", None, None),
    ]


def test_changed_fields_keep_only_differences_as_json() -> None:
    before, after = audit.changed_fields(
        {"quantity": Decimal("1.500"), "line": "L1", "gone": 1}, {"quantity": Decimal("2.000"), "line": "L1"}
    )
    assert before == {"quantity": "1.500", "gone": 1}
    assert after == {"quantity": "2.000"}
    assert audit.changed_fields(None, {"a": 1}) == (None, {"a": 1})


async def test_a_writer_committing_several_requests_attributes_each_row_to_its_request(
    app: Starlette,
) -> None:
    first = audit.Attribution(Principal(1, "line 1 tablet", Role.OPERATOR), "req-one-00001")
    second = audit.Attribution(Principal(2, "line 2 tablet", Role.OPERATOR), "req-two-00002")
    async with app.state.resources.sessions.begin() as session:
        await audit.record_many(
            session,
            [
                audit.AuditEntry("charge", 5, "record_measurements", after={"count": 1}, attribution=first),
                audit.AuditEntry("charge", 6, "record_measurements", after={"count": 1}, attribution=second),
            ],
        )
    async with app.state.resources.sessions() as session:
        rows = await AuditRepository(session).events(
            entity="charge", entity_id=None, before_id=None, limit=10
        )
    assert [(row.entity_id, row.actor_name, row.request_id) for row in rows] == [
        ("6", "line 2 tablet", "req-two-00002"),
        ("5", "line 1 tablet", "req-one-00001"),
    ]


async def test_spec_changes_are_audited_with_before_and_after(client: httpx.AsyncClient) -> None:
    url = "/api/v1/quality/specs/PUMP-A/diameter_mm"
    spec = {"unit": "mm", "lsl": 9.9, "usl": 10.1, "target": 10.0}
    assert (await client.put(url, json=spec)).status_code == 201
    assert (await client.put(url, json={**spec, "usl": 10.2})).status_code == 200
    update, create_event = await trail(client, entity="quality_spec", id="PUMP-A/diameter_mm")
    assert (create_event["action"], create_event["before"]) == ("create", None)
    assert create_event["after"]["usl"] == 10.1
    assert update["action"] == "update"
    assert (update["before"], update["after"]) == ({"usl": 10.1}, {"usl": 10.2})


async def test_measurements_are_audited_per_request_with_the_posting_key(
    client: httpx.AsyncClient, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    charge = await create(client, 1)
    await client.post(f"{API}/{charge['id']}/transitions", json={"to": "in_production"})
    spec = await client.put(f"{API_PREFIX}/quality/specs/PUMP-A/weight_g", json={"unit": "g", "usl": 100.0})
    assert spec.status_code == 201, spec.text
    operator = await client_as("operator")
    url = f"{API}/{charge['id']}/measurements"
    single = await operator.post(
        url, json={"parameter": "weight_g", "value": 50.5}, headers={"X-Request-ID": "req-single-01"}
    )
    assert single.status_code == 201, single.text
    items = [{"parameter": "weight_g", "value": 50.0 + n / 10} for n in range(5)]
    batch = await operator.post(url, json={"items": items}, headers={"X-Request-ID": "req-batch-001"})
    assert batch.status_code == 201, batch.text
    events = [
        e
        for e in await trail(client, entity="charge", id=str(charge["id"]))
        if e["action"] == "record_measurements"
    ]
    by_request = {e["request_id"]: e for e in events}
    assert set(by_request) == {"req-single-01", "req-batch-001"}
    assert by_request["req-single-01"]["actor"]["role"] == "operator"
    assert by_request["req-single-01"]["after"]["parameter"] == "weight_g"
    assert by_request["req-batch-001"]["after"] == {"count": 5, "parameters": ["weight_g"]}
    assert by_request["req-batch-001"]["actor"]["name"] == "test operator"


async def test_starting_an_analysis_and_a_job_by_hand_are_audited(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    headers = {"Idempotency-Key": "audit-analysis-1"}
    first = await client.post(f"{API}/{charge['id']}/analyses", json={"rules": "nelson"}, headers=headers)
    assert first.status_code == 202, first.text
    replay = await client.post(f"{API}/{charge['id']}/analyses", json={"rules": "nelson"}, headers=headers)
    assert replay.json()["id"] == first.json()["id"]
    (event,) = await trail(client, entity="analysis", id=str(first.json()["id"]))
    assert event["action"] == "create"
    assert event["after"] == {
        "charge_id": charge["id"],
        "rules": "nelson",
        "idempotency_key": "audit-analysis-1",
    }

    run = await client.post("/api/v1/jobs/warm_quality_summaries/run")
    assert run.status_code == 202
    (job_event,) = await trail(client, entity="job", id="warm_quality_summaries")
    assert job_event["action"] == "run"
    assert job_event["after"]["task_id"] == run.json()["task_id"]
