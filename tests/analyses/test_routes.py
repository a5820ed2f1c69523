"""The analyses and jobs API as clients use it, on SQLite and PostgreSQL, publishing to a real broker.

The app publishes to the embedded SQLite broker of the test (nothing consumes it here), so what was
published can be read back: queue lengths through the API, message headers from the broker file.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.settings import Settings
from tests.analyses.helpers import analyses_url, measured_charge, submit
from tests.charges.helpers import assert_problem, create
from tests.conftest import BASE_URL, TEST_ADMIN_KEY, bearer

API = "/api/v1"


async def queue_lengths(client: httpx.AsyncClient) -> dict[str, int | None]:
    response = await client.get(f"{API}/jobs/status")
    assert response.status_code == 200, response.text
    queues: dict[str, int | None] = response.json()["queues"]
    return queues


def broker_messages(settings: Settings) -> list[dict[str, Any]]:
    path = settings.broker_url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT payload FROM kombu_message ORDER BY id").fetchall()
    return [orjson.loads(payload) for (payload,) in rows]


def task_args(message: dict[str, Any]) -> list[Any]:
    args: list[Any] = orjson.loads(base64.b64decode(message["body"]))[0]
    return args


async def test_submit_answers_202_with_location_and_a_queued_record(client: httpx.AsyncClient) -> None:
    charge_id = (await create(client, 1))["id"]
    response = await client.post(analyses_url(charge_id), json={"rules": "nelson"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "status_url"}
    assert body["status"] == "queued"
    assert body["status_url"] == f"{API}/analyses/{body['id']}"
    assert response.headers["location"] == body["status_url"]
    record = await client.get(response.headers["location"])
    assert record.status_code == 200
    assert record.json() == {
        "id": body["id"],
        "charge_id": charge_id,
        "rules": "nelson",
        "baseline": None,
        "status": "queued",
        "attempts": 0,
        "created_at": record.json()["created_at"],
        "started_at": None,
        "finished_at": None,
        "error": None,
        "result": None,
    }
    assert record.headers["cache-control"] == "no-store"


async def test_submit_publishes_one_message_after_commit_carrying_the_request_id(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    charge_id = await measured_charge(client, points=5)
    response = await client.post(
        analyses_url(charge_id),
        json={"rules": "western_electric", "baseline": {"diameter": {"center": 10, "sigma": 0.5}}},
        headers={"X-Request-ID": "req-analysis-000001"},
    )
    assert response.status_code == 202
    (message,) = broker_messages(settings)
    assert message["headers"]["task"] == "erp.analysis.run"
    assert task_args(message) == [response.json()["id"]]  # the id only; the worker re-reads the row
    assert message["headers"]["request_id"] == "req-analysis-000001"
    assert (await queue_lengths(client))["high_priority"] == 1
    record = (await client.get(response.headers["location"])).json()
    assert record["baseline"] == {"diameter": {"center": 10.0, "sigma": 0.5}}


async def test_a_repeated_idempotency_key_returns_the_same_analysis_and_publishes_once(
    client: httpx.AsyncClient,
) -> None:
    charge_id = (await create(client, 1))["id"]
    headers = {"Idempotency-Key": "order-4711-analysis"}
    first = await client.post(analyses_url(charge_id), json={"rules": "nelson"}, headers=headers)
    again = await client.post(analyses_url(charge_id), json={"rules": "nelson"}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = (await client.get(analyses_url(charge_id))).json()
    assert [item["id"] for item in listed["items"]] == [first.json()["id"]]
    assert (await queue_lengths(client))["high_priority"] == 1


async def test_an_idempotency_key_reused_for_a_different_request_is_422(client: httpx.AsyncClient) -> None:
    charge_id = (await create(client, 1))["id"]
    other_charge = (await create(client, 2))["id"]
    headers = {"Idempotency-Key": "k-0001"}
    assert (
        await client.post(analyses_url(charge_id), json={"rules": "nelson"}, headers=headers)
    ).status_code == 202
    for url, body in [
        (analyses_url(charge_id), {"rules": "western_electric"}),
        (analyses_url(other_charge), {"rules": "nelson"}),
    ]:
        problem = assert_problem(await client.post(url, json=body, headers=headers), 422)
        assert problem["errors"][0]["field"] == "header.Idempotency-Key"


async def test_concurrent_requests_with_one_key_create_one_analysis(client: httpx.AsyncClient) -> None:
    charge_id = (await create(client, 1))["id"]
    responses = await asyncio.gather(
        *(
            client.post(
                analyses_url(charge_id), json={"rules": "nelson"}, headers={"Idempotency-Key": "same"}
            )
            for _ in range(8)
        )
    )
    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    listed = (await client.get(analyses_url(charge_id))).json()
    assert len(listed["items"]) == 1


async def test_unknown_charges_and_analyses_are_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(analyses_url(999), json={"rules": "nelson"}), 404)
    assert_problem(await client.get(analyses_url(999)), 404)
    assert_problem(await client.get(f"{API}/analyses/999"), 404)
    assert_problem(await client.get(f"{API}/analyses/not-a-number"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.rules"),
        ({"rules": "shewhart"}, "body.rules"),
        (
            {"rules": "nelson", "baseline": {"diameter": {"center": 1.0, "sigma": 0}}},
            "body.baseline.diameter.sigma",
        ),
        ({"rules": "nelson", "baseline": {"diameter": {"center": 1.0}}}, "body.baseline.diameter.sigma"),
        (
            {"rules": "nelson", "baseline": {"diameter": {"center": "x", "sigma": 1}}},
            "body.baseline.diameter.center",
        ),
        ({"rules": "nelson", "colour": "red"}, "body.colour"),
    ],
)
async def test_invalid_requests_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    charge_id = (await create(client, 1))["id"]
    problem = assert_problem(await client.post(analyses_url(charge_id), json=body), 422)
    assert field in [error["field"] for error in problem["errors"]]


async def test_a_malformed_idempotency_key_is_422(client: httpx.AsyncClient) -> None:
    charge_id = (await create(client, 1))["id"]
    response = await client.post(
        analyses_url(charge_id), json={"rules": "nelson"}, headers={"Idempotency-Key": "x" * 201}
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "header.Idempotency-Key"


async def test_a_charges_analyses_are_listed_newest_first_in_bounded_pages(client: httpx.AsyncClient) -> None:
    charge_id = (await create(client, 1))["id"]
    ids = [(await submit(client, charge_id))["id"] for _ in range(3)]
    first = (await client.get(analyses_url(charge_id), params={"limit": 2})).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    rest = (
        await client.get(analyses_url(charge_id), params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [item["id"] for item in rest["items"]] == ids[:1]
    assert rest["next_cursor"] is None
    too_many = await client.get(analyses_url(charge_id), params={"limit": 101})
    assert assert_problem(too_many, 422)["errors"][0]["field"] == "query.limit"


async def test_job_status_lists_every_job_with_its_queue_and_the_queue_lengths(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/jobs/status")
    assert response.status_code == 200
    body = response.json()
    jobs = {job["name"]: job for job in body["jobs"]}
    assert set(jobs) == {
        "run_analysis",
        "reap_analyses",
        "warm_quality_summaries",
        "retention_cleanup",
        "deliver_webhook",
        "sweep_webhooks",
    }
    assert jobs["reap_analyses"]["queue"] == "maintenance"
    assert jobs["warm_quality_summaries"]["queue"] == "aggregations"
    assert jobs["retention_cleanup"]["interval_seconds"] is None  # off by default
    assert jobs["reap_analyses"]["runs"] == 0 and jobs["reap_analyses"]["success_rate"] is None
    assert body["queues"] == {"high_priority": 0, "aggregations": 0, "maintenance": 0, "webhooks": 0}
    assert body["broker_error"] is None


async def test_a_periodic_job_can_be_run_by_hand(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(f"{API}/jobs/warm_quality_summaries/run")
    assert response.status_code == 202
    body = response.json()
    assert body["name"] == "warm_quality_summaries" and body["queue"] == "aggregations"
    (message,) = broker_messages(settings)
    assert message["headers"]["id"] == body["task_id"]
    assert message["headers"]["task"] == "erp.aggregations.warm_quality_summaries"
    assert (await queue_lengths(client))["aggregations"] == 1


async def test_running_an_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(f"{API}/jobs/run_analysis/run"), 404)
    assert_problem(await client.post(f"{API}/jobs/drop_tables/run"), 404)
    assert_problem(await client.post(f"{API}/jobs/..%2F/run"), 404)


async def test_reading_analyses_is_for_viewers_and_starting_them_for_quality_managers(
    client: httpx.AsyncClient, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    charge_id = (await create(client, 1))["id"]
    accepted = await submit(client, charge_id)
    viewer = await client_as("viewer")
    assert (await viewer.get(accepted["status_url"])).status_code == 200
    assert (await viewer.post(analyses_url(charge_id), json={"rules": "nelson"})).status_code == 403
    manager = await client_as("quality_manager")
    assert (await manager.post(analyses_url(charge_id), json={"rules": "nelson"})).status_code == 202
    assert (await manager.get(f"{API}/jobs/status")).status_code == 403


@pytest.fixture
async def broker_down_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its broker at a port nobody listens on."""
    application: Starlette = create_app(
        settings.model_copy(
            update={"broker_url": "redis://127.0.0.1:9/0", "broker_connect_timeout_seconds": 0.5}
        )
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=bearer(TEST_ADMIN_KEY)
        ) as http:
            yield http


async def test_with_the_broker_down_a_submitted_analysis_is_still_accepted_and_kept_queued(
    broker_down_client: httpx.AsyncClient,
) -> None:
    client = broker_down_client
    charge_id = (await create(client, 1))["id"]
    started = time.monotonic()
    response = await client.post(analyses_url(charge_id), json={"rules": "nelson"})
    assert response.status_code == 202  # the row is committed; the reaper publishes it later
    assert time.monotonic() - started < 5
    assert (await client.get(response.headers["location"])).json()["status"] == "queued"
    status = (await client.get(f"{API}/jobs/status")).json()
    assert status["queues"] == {
        "high_priority": None,
        "aggregations": None,
        "maintenance": None,
        "webhooks": None,
    }
    assert status["broker_error"]
    assert_problem(await client.post(f"{API}/jobs/reap_analyses/run"), 503)


async def test_an_analysis_of_real_measurements_can_be_submitted(client: httpx.AsyncClient) -> None:
    charge_id = await measured_charge(client, points=50)
    accepted = await submit(client, charge_id, baseline={"diameter": {"center": 10.0, "sigma": 0.05}})
    assert (await client.get(accepted["status_url"])).json()["status"] == "queued"
