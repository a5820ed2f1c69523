"""Quality alerts through the API on both databases: raised after measurements commit (single, group
commit, batch, concurrent), listed and read, moved through their life cycle, counted in /metrics."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.quality.models import RuleCheck
from erp_api.security.services import BOOTSTRAP_KEY_NAME
from erp_api.settings import Settings
from erp_api.webhooks.models import WebhookDelivery
from tests.charges.helpers import assert_problem
from tests.observability.conftest import scrape, value
from tests.quality.alerts.helpers import (
    ALERTS,
    BEYOND_3_SIGMA,
    expected_alerts,
    quiet,
    series_points,
    start_production,
    stored_alerts,
    wait_for_alerts,
    watch,
)
from tests.quality.helpers import at, new_charge, post_one, post_series, serving, tuned

ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]
HANG_GUARD = 30.0


async def wait_until_checked(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Until the rule check has taken every outbox row (a hang guard, not a latency assertion)."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            async with sessions() as session:
                if not await session.scalar(select(func.count()).select_from(RuleCheck)):
                    return
            await asyncio.sleep(0.05)


async def watched_charge(client: httpx.AsyncClient, serial: int = 1, **spec: Any) -> int:
    charge_id = await new_charge(client, serial)
    await start_production(client, charge_id)
    await watch(client, **spec)
    return charge_id


async def transition(
    client: httpx.AsyncClient, alert_id: int, to: str, reason: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"to": to} if reason is None else {"to": to, "reason": reason}
    return await client.post(f"{ALERTS}/{alert_id}/transitions", json=body)


# Raised on ingest -----------------------------------------------------------------------------------


async def test_a_violating_single_measurement_opens_one_alert(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", quiet(20))
    response = await post_one(client, charge_id, "diameter", BEYOND_3_SIGMA, measured_at=at(30))
    assert response.status_code == 201, response.text
    measurement_id = response.json()["id"]
    (alert,) = await wait_for_alerts(client, 1)
    await wait_until_checked(sessions)
    assert alert == {
        "id": alert["id"],
        "charge_id": charge_id,
        "product_sku": "PUMP-A",
        "parameter": "diameter",
        "rule": "N1",
        "measurement_id": measurement_id,
        "measurement_ids": [measurement_id],
        "limits": {"id": alert["limits"]["id"], "center": 10.0, "sigma": 1.0, "ucl": 13.0, "lcl": 7.0},
        "status": "open",
        "reason": None,
        "opened_at": alert["opened_at"],
        "updated_at": alert["opened_at"],
        "changed_by": None,
    }
    assert len((await client.get(ALERTS)).json()["items"]) == 1
    assert (await client.get(f"{ALERTS}/{alert['id']}")).json() == alert


async def test_a_violating_batch_opens_one_alert_per_violation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await watched_charge(client)
    values = [*quiet(30), *[10.2] * 8, 12.5, 12.6, BEYOND_3_SIGMA, 9.0, *quiet(20)]
    await post_series(client, charge_id, "diameter", values)
    expected = expected_alerts(await series_points(sessions))
    assert {"N1", "N2", "N5"} <= {rule for rule, _ in expected}
    alerts = await wait_for_alerts(client, len(expected))
    await wait_until_checked(sessions)
    listed = (await client.get(ALERTS, params={"limit": 500})).json()["items"]
    assert sorted((alert["rule"], alert["measurement_id"]) for alert in listed) == sorted(expected)
    assert len(alerts) == len(listed)


async def test_in_control_measurements_open_no_alert(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", quiet(50))
    for minute in range(50, 55):
        assert (
            await post_one(client, charge_id, "diameter", quiet(minute + 1)[-1], measured_at=at(minute))
        ).status_code == 201
    await wait_until_checked(sessions)
    assert (await client.get(ALERTS)).json() == {"items": [], "next_cursor": None}


async def test_a_series_without_control_limits_raises_no_alert(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await new_charge(client, 1)
    response = await client.put(
        f"{API_PREFIX}/quality/specs/PUMP-A/diameter", json={"unit": "mm", "lsl": 0.0, "usl": 100.0}
    )
    assert response.status_code == 201, response.text
    await post_series(client, charge_id, "diameter", [BEYOND_3_SIGMA] * 12)
    await wait_until_checked(sessions)
    assert await stored_alerts(sessions) == []


async def test_concurrent_ingestion_opens_exactly_one_alert_per_violation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """20 single posts (group commit) and 2 batches on one series at once, committed in whatever
    order. N1 and N2 on points all above the centre fire the same whatever that order, so the
    alerts must be exactly the engine's on the final series."""
    charge_id = await watched_charge(client, rule_ids=["N1", "N2"])
    rng = random.Random(12)
    above = [round(rng.uniform(10.1, 10.9), 2) for _ in range(60)]
    for index in (3, 17, 31, 44, 58):
        above[index] = BEYOND_3_SIGMA
    singles = [post_one(client, charge_id, "diameter", above[i], measured_at=at(i)) for i in range(20)]
    batches = [
        post_series(client, charge_id, "diameter", above[start : start + 20], start=start)
        for start in (20, 40)
    ]
    results = await asyncio.gather(*singles, *batches)
    assert all(result.status_code == 201 for result in results[:20])
    await wait_until_checked(sessions)
    expected = expected_alerts(await series_points(sessions), rule_ids=["N1", "N2"])
    assert len(expected) == 5 + (60 - 8)
    alerts = await stored_alerts(sessions)
    assert sorted((alert.rule, alert.measurement_id) for alert in alerts) == sorted(expected)


async def test_rows_a_stopped_server_left_unchecked_are_checked_by_the_next_one(settings: Settings) -> None:
    """The in-process counterpart of tests/integration/test_rule_check_kill.py."""
    async with serving(tuned(settings, rule_check_delay_seconds=3600)) as (app, client):
        charge_id = await watched_charge(client)
        await post_series(client, charge_id, "diameter", [*quiet(20), BEYOND_3_SIGMA])
        assert (
            await post_one(client, charge_id, "diameter", BEYOND_3_SIGMA, measured_at=at(40))
        ).status_code == 201
        sessions = app.state.resources.sessions
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(RuleCheck)) == 2
        assert (await client.get(ALERTS)).json()["items"] == []
    async with serving(tuned(settings)) as (app, client):
        sessions = app.state.resources.sessions
        expected = expected_alerts(await series_points(sessions))
        assert [rule for rule, _ in sorted(expected)] == ["N1", "N1", "N5"]
        await wait_for_alerts(client, len(expected))
        await wait_until_checked(sessions)
        listed = (await client.get(ALERTS)).json()["items"]
        assert sorted((alert["rule"], alert["measurement_id"]) for alert in listed) == sorted(expected)


# Listing and reading --------------------------------------------------------------------------------


@pytest.fixture
async def three_alerts(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> list[dict[str, Any]]:
    """Alerts on two charges and two rules: N1 on charge 1, then N1 and N2 on charge 2; newest first."""
    first = await watched_charge(client, rule_ids=["N1", "N2"])
    await post_series(client, first, "diameter", [9.0, BEYOND_3_SIGMA])
    await wait_for_alerts(client, 1)
    second = await new_charge(client, 2)
    await start_production(client, second)
    await post_series(client, second, "diameter", [*[10.5] * 7, BEYOND_3_SIGMA], start=10)
    alerts = await wait_for_alerts(client, 3)
    await wait_until_checked(sessions)
    assert [(alert["charge_id"], alert["rule"]) for alert in alerts] in (
        [(second, "N2"), (second, "N1"), (first, "N1")],
        [(second, "N1"), (second, "N2"), (first, "N1")],
    )
    return alerts


async def test_alerts_are_listed_newest_first_in_keyset_pages(
    client: httpx.AsyncClient, three_alerts: list[dict[str, Any]]
) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(ALERTS, params=params)).json()
        seen.extend(alert["id"] for alert in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) == [alert["id"] for alert in three_alerts]


async def test_alerts_are_filtered_by_status_charge_product_parameter_and_rule(
    client: httpx.AsyncClient, three_alerts: list[dict[str, Any]]
) -> None:
    newest, middle, oldest = three_alerts
    assert (await transition(client, oldest["id"], "acknowledged")).status_code == 200
    assert (await transition(client, middle["id"], "dismissed", "a known probe fault")).status_code == 200

    async def ids(query: str) -> list[int]:
        response = await client.get(f"{ALERTS}?{query}")
        assert response.status_code == 200, response.text
        return [alert["id"] for alert in response.json()["items"]]

    assert await ids("status=open") == [newest["id"]]
    assert await ids("status=open&status=acknowledged") == [newest["id"], oldest["id"]]
    assert await ids("status=dismissed") == [middle["id"]]
    assert await ids(f"charge_id={oldest['charge_id']}") == [oldest["id"]]
    assert await ids("rule=N1") == [alert["id"] for alert in three_alerts if alert["rule"] == "N1"]
    assert await ids("product_sku=PUMP-A&parameter=diameter") == [alert["id"] for alert in three_alerts]
    assert await ids("product_sku=PUMP-B") == []
    assert await ids("parameter=weight") == []


@pytest.mark.parametrize(
    "query",
    [
        "status=closed",
        "rule=N9",
        "charge_id=0",
        "rule=N1&rule=N2",
        "cursor=not-a-cursor",
        "limit=501",
        "colour=red",
    ],
)
async def test_a_bad_alert_query_is_a_422(client: httpx.AsyncClient, query: str) -> None:
    assert_problem(await client.get(f"{ALERTS}?{query}"), 422)


async def test_an_unknown_alert_is_a_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{ALERTS}/999"), 404)
    assert_problem(await transition(client, 999, "acknowledged"), 404)


# Transitions ----------------------------------------------------------------------------------------


async def test_a_quality_manager_moves_an_alert_and_the_move_is_recorded(
    client: httpx.AsyncClient, client_as: ClientAs, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", [9.0, BEYOND_3_SIGMA])
    (alert,) = await wait_for_alerts(client, 1)
    url = f"{ALERTS}/{alert['id']}"
    assert (await client.get(url)).json()["status"] == "open"  # cached now
    assert len((await client.get(ALERTS, params={"status": "open"})).json()["items"]) == 1
    manager = await client_as("quality_manager")

    response = await transition(manager, alert["id"], "acknowledged", "looking into it")
    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["status"], moved["reason"], moved["changed_by"]) == (
        "acknowledged",
        "looking into it",
        "test quality_manager",
    )
    assert moved["updated_at"] >= moved["opened_at"]
    assert (await client.get(url)).json() == moved
    assert (await client.get(ALERTS, params={"status": "open"})).json()["items"] == []

    assert (
        await transition(manager, alert["id"], "action_proposed", "recalibrate the gauge")
    ).status_code == 200
    assert (await transition(manager, alert["id"], "resolved", "gauge recalibrated")).json()[
        "status"
    ] == "resolved"

    audit = (
        await client.get(f"{API_PREFIX}/audit", params={"entity": "quality_alert", "id": alert["id"]})
    ).json()
    events = sorted(audit["items"], key=lambda event: event["id"])
    assert [event["action"] for event in events] == ["open", "transition", "transition", "transition"]
    assert [event["after"].get("status") for event in events] == [
        "open",
        "acknowledged",
        "action_proposed",
        "resolved",
    ]
    assert events[-1]["after"]["reason"] == "gauge recalibrated"
    assert {event["actor"]["name"] for event in events[1:]} == {"test quality_manager"}


async def test_an_illegal_move_is_a_409_naming_the_allowed_targets(client: httpx.AsyncClient) -> None:
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", [9.0, BEYOND_3_SIGMA])
    (alert,) = await wait_for_alerts(client, 1)
    body = assert_problem(await transition(client, alert["id"], "open"), 409)
    assert body["current"] == "open"
    assert body["allowed"] == ["acknowledged", "action_proposed", "resolved", "dismissed"]
    assert (
        await transition(client, alert["id"], "dismissed", "duplicate of a known fault")
    ).status_code == 200
    body = assert_problem(await transition(client, alert["id"], "resolved"), 409)
    assert (body["current"], body["allowed"]) == ("dismissed", [])
    assert (await client.get(f"{ALERTS}/{alert['id']}")).json()["reason"] == "duplicate of a known fault"


@pytest.mark.parametrize(
    "body", [{}, {"to": "closed"}, {"to": "resolved", "reason": ""}, {"to": "resolved", "extra": 1}]
)
async def test_a_malformed_move_is_a_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert_problem(await client.post(f"{ALERTS}/1/transitions", json=body), 422)


async def test_viewers_read_alerts_but_only_quality_managers_move_them(
    client: httpx.AsyncClient, client_as: ClientAs
) -> None:
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", [9.0, BEYOND_3_SIGMA])
    (alert,) = await wait_for_alerts(client, 1)
    viewer, operator = await client_as("viewer"), await client_as("operator")
    assert (await viewer.get(f"{ALERTS}/{alert['id']}")).status_code == 200
    for caller in (viewer, operator):
        assert (
            assert_problem(await transition(caller, alert["id"], "resolved"), 403)["required_role"]
            == "quality_manager"
        )


# Auto hold and the release ---------------------------------------------------------------------------


async def test_auto_hold_quarantines_the_charge_until_its_alerts_are_settled(
    client: httpx.AsyncClient,
) -> None:
    charge_id = await watched_charge(client, auto_hold=True)
    await post_series(client, charge_id, "diameter", [9.0, BEYOND_3_SIGMA])
    (alert,) = await wait_for_alerts(client, 1)
    charge = (await client.get(f"{API_PREFIX}/charges/{charge_id}")).json()
    assert charge["status"] == "quarantined"
    history = (await client.get(f"{API_PREFIX}/charges/{charge_id}/history")).json()["items"]
    assert [(step["from"], step["to"], step["by"]["name"], step["by"]["key_id"]) for step in history] == [
        ("planned", "in_production", BOOTSTRAP_KEY_NAME, history[0]["by"]["key_id"]),
        ("in_production", "quarantined", "system (auto_hold)", None),
    ]
    assert history[-1]["reason"] is not None and str(alert["id"]) in history[-1]["reason"]
    release = f"{API_PREFIX}/charges/{charge_id}/transitions"
    refused = assert_problem(await client.post(release, json={"to": "released"}), 409)
    assert refused["open_alert_ids"] == [alert["id"]]
    assert (await transition(client, alert["id"], "resolved", "part re-measured")).status_code == 200
    assert (await client.post(release, json={"to": "released"})).status_code == 200


# Metrics --------------------------------------------------------------------------------------------


async def test_opened_and_open_alerts_are_counted_in_the_metrics(client: httpx.AsyncClient) -> None:
    before = value(await scrape(client), "erp_quality_alerts_opened_total", rule="N1")
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", [9.0, BEYOND_3_SIGMA])
    (alert,) = await wait_for_alerts(client, 1)
    samples = await scrape(client)
    assert value(samples, "erp_quality_alerts_opened_total", rule="N1") == before + 1

    async def open_gauge(expected: float) -> None:
        async with asyncio.timeout(HANG_GUARD):  # counted at most every few seconds
            while True:
                if value(await scrape(client), "erp_quality_alerts_open", rule="N1") == expected:
                    return
                await asyncio.sleep(0.1)

    await open_gauge(1)
    assert value(await scrape(client), "erp_quality_rule_checks_pending") == 0
    await transition(client, alert["id"], "resolved")
    await open_gauge(0)


async def test_opening_and_moving_an_alert_queue_signed_webhook_deliveries_in_the_same_transaction(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await client.post(
        f"{API_PREFIX}/webhooks",
        json={"url": "https://receiver.example/hooks", "events": ["alert.opened", "alert.changed"]},
    )
    assert created.status_code == 201, created.text
    charge_id = await watched_charge(client)
    await post_series(client, charge_id, "diameter", quiet(20))
    assert (
        await post_one(client, charge_id, "diameter", BEYOND_3_SIGMA, measured_at=at(30))
    ).status_code == 201
    (alert,) = await wait_for_alerts(client, 1)
    moved = await client.post(f"{ALERTS}/{alert['id']}/transitions", json={"to": "acknowledged"})
    assert moved.status_code == 200, moved.text
    async with sessions() as session:
        deliveries = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
    assert [delivery.event_type for delivery in deliveries] == ["alert.opened", "alert.changed"]
    assert all(f'"id":{alert["id"]}' in delivery.payload for delivery in deliveries)
    assert {delivery.status for delivery in deliveries} == {"pending"}


async def test_every_alert_of_one_check_gets_its_webhook_delivery(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = await client.post(
        f"{API_PREFIX}/webhooks", json={"url": "https://receiver.example/hooks", "events": ["alert.opened"]}
    )
    assert created.status_code == 201, created.text
    charge_id = await watched_charge(client, rule_ids=["N1"])
    # One batch, so one check: three points beyond 3 sigma among in-control ones open three alerts.
    values = quiet(20)
    for index in (5, 10, 15):
        values[index] = BEYOND_3_SIGMA
    await post_series(client, charge_id, "diameter", values)
    alerts = await wait_for_alerts(client, 3)
    async with sessions() as session:
        deliveries = (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()
    assert len(alerts) == 3
    delivered = [orjson.loads(delivery.payload)["data"]["id"] for delivery in deliveries]
    assert sorted(delivered) == sorted(alert["id"] for alert in alerts)
