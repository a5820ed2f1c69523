"""``GET /api/v1/events``: each write's event arrives on the stream; resume, filters, role policy,
heartbeats, tickets, slow-client cutoff, client limit (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import text
from starlette.applications import Starlette

from erp_api.analyses.runner import AnalysisRunner, BaselineMap, RunnerLimits
from erp_api.events.log import EventType, latest_id, record_event
from erp_api.http import API_PREFIX
from erp_api.settings import Settings
from tests.charges.helpers import create, move_to
from tests.conftest import TEST_ADMIN_KEY, bearer
from tests.database import NewAnalysis
from tests.events.sse import SseStream, caught_up
from tests.quality.alerts.helpers import ALERTS, BEYOND_3_SIGMA, start_production, watch
from tests.quality.helpers import given_spec, post_one, post_series, serving, tuned

EVENTS = f"{API_PREFIX}/events"
TICKETS = f"{API_PREFIX}/events/tickets"
ADMIN = bearer(TEST_ADMIN_KEY)


def stream(app: Starlette, headers: Mapping[str, str] = ADMIN, **params: Any) -> SseStream:
    return SseStream(app, EVENTS, headers=headers, params=params)


async def test_the_stream_is_an_event_stream_that_starts_with_a_retry_hint(app: Starlette) -> None:
    async with stream(app) as events:
        assert events.status == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        assert events.headers["cache-control"] == "no-store"
        assert "content-encoding" not in events.headers
        first = await events.frame()
        assert first is not None and first.retry == 3000


async def test_charge_writes_arrive_as_created_updated_and_status_changed_events(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    async with stream(app) as events:
        charge = await create(client, 1)
        response = await client.patch(f"{API_PREFIX}/charges/{charge['id']}", json={"line": "L2"})
        assert response.status_code == 200, response.text
        await move_to(client, charge["id"], "in_production")
        created, updated, moved = await events.events(3)
    assert (created.event, updated.event, moved.event) == (
        "charge.created",
        "charge.updated",
        "charge.status_changed",
    )
    assert int(created.id or 0) < int(updated.id or 0) < int(moved.id or 0)
    assert created.data["data"]["charge_number"] == charge["charge_number"]
    assert created.data["charge_id"] == charge["id"]
    assert updated.data["data"]["changed"] == ["line"]
    assert updated.data["data"]["charge"]["line"] == "L2"
    assert updated.data["data"]["charge"]["version"] == response.json()["version"]
    assert (moved.data["data"]["from"], moved.data["data"]["to"]) == ("planned", "in_production")


async def test_one_commit_of_measurements_is_one_event_with_counts_per_series(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await given_spec(client, "diameter", "length")
    charge = await create(client, 1)
    async with stream(app, types="measurements.added") as events:
        await post_series(client, charge["id"], "diameter", [1.0, 2.0, 3.0])
        assert (await post_one(client, charge["id"], "length", 5.0)).status_code == 201
        batch, single = await events.events(2)
    assert batch.event == "measurements.added"
    assert batch.data["data"]["count"] == 3
    assert batch.data["data"]["series"] == [
        {"charge_id": charge["id"], "product_sku": charge["product_sku"], "parameter": "diameter", "count": 3}
    ]
    assert single.data["data"]["series"][0]["parameter"] == "length"
    assert single.data["charge_id"] == charge["id"]


async def test_an_opened_and_a_moved_alert_arrive_as_alert_events(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await watch(client)
    charge = await create(client, 1)
    await start_production(client, charge["id"])
    async with stream(app, types="alert.opened,alert.changed") as events:
        assert (await post_one(client, charge["id"], "diameter", BEYOND_3_SIGMA)).status_code == 201
        opened = await events.event()
        alert_id = opened.data["data"]["id"]
        response = await client.post(
            f"{ALERTS}/{alert_id}/transitions", json={"to": "acknowledged", "reason": "on it"}
        )
        assert response.status_code == 200, response.text
        changed = await events.event()
    assert opened.event == "alert.opened"
    assert opened.data["charge_id"] == charge["id"]
    assert opened.data["data"]["rule"]
    assert changed.event == "alert.changed"
    assert (changed.data["data"]["from"], changed.data["data"]["status"]) == ("open", "acknowledged")


async def analyze(charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
    return {"charge_id": charge_id, "parameters": [], "anomaly_count": 1}


async def test_a_finished_analysis_reaches_quality_managers_but_not_viewers(
    app: Starlette,
    client_as: Callable[[str], Awaitable[httpx.AsyncClient]],
    new_analysis: NewAnalysis,
) -> None:
    viewer = (await client_as("viewer")).headers["authorization"]
    manager = (await client_as("quality_manager")).headers["authorization"]
    analysis_id = await new_analysis()
    runner = AnalysisRunner(
        app.state.resources.sessions,
        analyze,
        RunnerLimits(time_limit_seconds=5, stale_after_seconds=60, max_attempts=3),
    )
    async with (
        stream(app, {"Authorization": viewer}) as seen_by_viewer,
        stream(app, {"Authorization": manager}) as seen_by_manager,
    ):
        await runner.run(analysis_id, "delivery-1")
        async with app.state.resources.sessions.begin() as session:
            # A marker after it: the viewer's next event is this, not the analysis.
            await record_event(session, EventType.CHARGE_UPDATED, {"marker": True}, charge_id=1)
        finished = await seen_by_manager.event()
        viewer_first = await seen_by_viewer.event()
    assert finished.event == "analysis.finished"
    assert finished.data["data"] == {
        "id": analysis_id,
        "charge_id": finished.data["charge_id"],
        "status": "succeeded",
        "anomaly_count": 1,
        "error": None,
    }
    assert viewer_first.event == "charge.updated"
    assert viewer_first.data["data"] == {"marker": True}


async def test_filters_select_by_type_charge_and_product(app: Starlette, client: httpx.AsyncClient) -> None:
    first = await create(client, 1, product_sku="PUMP-A")
    second = await create(client, 2, product_sku="PUMP-B")
    async with (
        stream(app, charge_id=second["id"]) as by_charge,
        stream(app, product_sku="PUMP-A") as by_product,
        stream(app, types=["charge.status_changed"]) as by_type,
    ):
        for charge in (first, second):
            await client.patch(f"{API_PREFIX}/charges/{charge['id']}", json={"line": "L9"})
            await move_to(client, charge["id"], "in_production")
        charge_events = await by_charge.events(2)
        product_events = await by_product.events(2)
        type_events = await by_type.events(2)
    assert {frame.data["charge_id"] for frame in charge_events} == {second["id"]}
    assert {frame.data["product_sku"] for frame in product_events} == {"PUMP-A"}
    assert [frame.event for frame in type_events] == ["charge.status_changed"] * 2
    assert [frame.data["charge_id"] for frame in type_events] == [first["id"], second["id"]]


async def test_an_unknown_type_is_a_422(app: Starlette) -> None:
    async with stream(app, types="charge.created,charge.exploded") as events:
        assert events.status == 422
        assert b"charge.exploded" in await events.body()


async def test_last_event_id_replays_exactly_the_missed_events_in_order(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    async with stream(app) as events:
        charge = await create(client, 1)
        seen = await events.event()
    missed = []
    for serial in range(2, 6):
        missed.append((await create(client, serial))["id"])
    await move_to(client, charge["id"], "in_production")
    async with stream(app, {**ADMIN, "Last-Event-ID": seen.id or ""}) as resumed:
        replayed = await resumed.events(5)
        await create(client, 9)
        live = await resumed.event()
    ids = [int(frame.id or 0) for frame in [*replayed, live]]
    assert ids == sorted(set(ids))
    assert ids[0] > int(seen.id or 0)
    assert [frame.data["charge_id"] for frame in replayed] == [*missed, charge["id"]]
    assert replayed[-1].event == "charge.status_changed"
    assert live.event == "charge.created"
    # The query parameter does the same as the header.
    async with stream(app, last_event_id=replayed[2].id) as by_query:
        assert [frame.id for frame in await by_query.events(2)] == [replayed[3].id, replayed[4].id]


async def test_resuming_after_an_expired_event_asks_the_client_to_refetch(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    for serial in range(1, 4):
        await create(client, serial)
    async with app.state.resources.sessions.begin() as session:
        await session.execute(text("DELETE FROM events WHERE id < (SELECT MAX(id) FROM events)"))
    async with app.state.resources.sessions() as session:
        await caught_up(app.state.resources.events, await latest_id(session))
    async with stream(app, last_event_id=0) as events:
        reset = await events.event()
        await create(client, 9)
        after = await events.event()
    assert reset.event == "stream.reset"
    assert reset.data["reason"] == "expired"
    assert after.event == "charge.created"
    assert int(after.id or 0) > int(reset.id or 0)


async def test_heartbeats_keep_an_idle_stream_alive(settings: Settings) -> None:
    tuned_settings = tuned(settings, event_heartbeat_seconds=0.05)
    async with serving(tuned_settings) as (app, _client), stream(app) as events:
        frames = [await events.frame() for _ in range(3)]
    assert [frame.comment for frame in frames if frame is not None][1:] == ["ping", "ping"]


async def test_a_slow_client_is_cut_off_and_resumes_without_a_gap(
    settings: Settings,
) -> None:
    async with serving(tuned(settings, event_client_buffer=2)) as (app, client):
        hub = app.state.resources.events
        async with stream(app) as slow:
            assert (await slow.frame()) is not None  # the retry hint
            slow.pause()
            created = [(await create(client, serial))["id"] for serial in range(1, 6)]
            async with app.state.resources.sessions() as session:
                newest = await latest_id(session)
            await caught_up(hub, newest)
            slow.unpause()
            received = []
            while (frame := await slow.frame()) is not None:
                if frame.event is not None:
                    received.append(frame)
            assert slow.ended
        assert len(received) < len(created)
        last = received[-1].id if received else "0"
        async with stream(app, {**ADMIN, "Last-Event-ID": last or "0"}) as resumed:
            rest = await resumed.events(len(created) - len(received))
    assert [frame.data["charge_id"] for frame in [*received, *rest]] == created


async def test_a_ticket_opens_one_stream_once_without_authorization(
    app: Starlette, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    viewer = await client_as("viewer")
    response = await viewer.post(TICKETS)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["expires_in"] == 60
    assert response.headers["cache-control"] == "no-store"
    async with stream(app, {}, ticket=body["ticket"]) as events:
        assert events.status == 200
    async with stream(app, {}, ticket=body["ticket"]) as again:
        assert again.status == 401
        assert b"ticket" in await again.body()


async def test_a_ticket_bears_the_role_of_the_key_that_asked_for_it(
    app: Starlette, client_as: Callable[[str], Awaitable[httpx.AsyncClient]]
) -> None:
    viewer = await client_as("viewer")
    ticket = (await viewer.post(TICKETS)).json()["ticket"]
    async with stream(app, {}, ticket=ticket) as events:
        async with app.state.resources.sessions.begin() as session:
            await record_event(session, EventType.ANALYSIS_FINISHED, {"id": 1})
            await record_event(session, EventType.CHARGE_CREATED, {"id": 2})
        first = await events.event()
    assert first.event == "charge.created"


async def test_an_expired_or_unknown_ticket_is_refused(settings: Settings) -> None:
    async with serving(tuned(settings, event_ticket_ttl_seconds=1)) as (app, client):
        ticket = (await client.post(TICKETS)).json()["ticket"]
        await asyncio.sleep(1.1)
        for attempt in (ticket, "evt_unknown", TEST_ADMIN_KEY):
            async with stream(app, {}, ticket=attempt) as events:
                assert events.status == 401, attempt


async def test_the_api_key_in_a_ticket_parameter_is_not_a_ticket(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    response = await client.get(
        f"{API_PREFIX}/charges", params={"ticket": "evt_x"}, headers={"Authorization": ""}
    )
    assert response.status_code == 401


async def test_beyond_the_client_limit_a_stream_is_refused_with_503_and_retry_after(
    settings: Settings,
) -> None:
    async with serving(tuned(settings, event_max_clients=1)) as (app, _client), stream(app) as first:
        assert first.status == 200
        async with stream(app) as second:
            assert second.status == 503
            assert second.headers["retry-after"] == "5"
            assert b"event streams" in await second.body()
