"""The event log and each process's reader: outbox semantics, retention, id order across holes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.runner import AnalysisRunner, RunnerLimits
from erp_api.db import utcnow
from erp_api.events import hub as hub_module
from erp_api.events.hub import EventHub, TooManyClients
from erp_api.events.log import EventType, delete_expired, events_after, record_event
from erp_api.events.models import Event
from erp_api.events.policy import EventFilter, visible_types
from erp_api.security.roles import Role
from tests.database import NewAnalysis


def hub_of(sessions: async_sessionmaker[AsyncSession], **overrides: object) -> EventHub:
    options: dict[str, object] = {
        "poll_interval_seconds": 3600.0,  # rounds are run by hand below
        "client_buffer": 10,
        "max_clients": 10,
        "retention": timedelta(hours=24),
    }
    options.update(overrides)
    return EventHub(sessions, sessions.kw["bind"], **options)  # type: ignore[arg-type]


async def stored(sessions: async_sessionmaker[AsyncSession]) -> list[Event]:
    async with sessions() as session:
        return await events_after(session, 0, 1000)


async def test_an_event_exists_exactly_when_its_transaction_commits(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await record_event(session, EventType.CHARGE_CREATED, {"id": 1}, charge_id=1)
            raise RuntimeError("the change failed")
    async with sessions.begin() as session:
        await record_event(session, EventType.CHARGE_CREATED, {"id": 2}, charge_id=2, product_sku="P")
    events = await stored(sessions)
    assert [(event.type, event.payload, event.charge_id, event.product_sku) for event in events] == [
        ("charge.created", {"id": 2}, 2, "P")
    ]


async def test_retention_deletes_old_events_but_always_keeps_the_newest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    old = utcnow() - timedelta(hours=30)
    async with sessions.begin() as session:
        await session.execute(
            insert(Event),
            [{"type": "charge.created", "payload": {}, "created_at": old} for _ in range(3)],
        )
    async with sessions.begin() as session:
        assert await delete_expired(session, timedelta(hours=24)) == 2
    assert len(await stored(sessions)) == 1
    async with sessions.begin() as session:
        await record_event(session, EventType.CHARGE_UPDATED, {})
    assert await hub_of(sessions, retention=timedelta(hours=24)).purge() == 1
    assert [event.type for event in await stored(sessions)] == ["charge.updated"]


async def test_the_reader_fans_out_matching_events_in_id_order_and_waits_for_a_hole(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = hub_of(sessions)
    subscription = hub.subscribe(EventFilter(visible_types(Role.VIEWER), charge_id=7))
    rows = [
        {"id": 1, "type": "charge.created", "charge_id": 7},
        {"id": 2, "type": "charge.created", "charge_id": 8},
        # id 3: a transaction that has not committed yet
        {"id": 4, "type": "charge.updated", "charge_id": 7},
    ]
    async with sessions.begin() as session:
        await session.execute(insert(Event), [{**row, "payload": {}, "created_at": utcnow()} for row in rows])
    await hub.read_once()
    assert hub.cursor == 2
    assert [subscription.queue.get_nowait().id] == [1]
    assert subscription.queue.empty()
    async with sessions.begin() as session:
        await session.execute(
            insert(Event),
            [{"id": 3, "type": "charge.updated", "charge_id": 7, "payload": {}, "created_at": utcnow()}],
        )
    await hub.read_once()
    assert [subscription.queue.get_nowait().id, subscription.queue.get_nowait().id] == [3, 4]
    # A hole that never fills (a rolled-back insert) is skipped after the grace period.
    async with sessions.begin() as session:
        await session.execute(
            insert(Event),
            [{"id": 6, "type": "charge.updated", "charge_id": 7, "payload": {}, "created_at": utcnow()}],
        )
    await hub.read_once()
    assert subscription.queue.empty()
    monkeypatch.setattr(hub_module, "GAP_GRACE_SECONDS", 0.0)
    await hub.read_once()
    assert subscription.queue.get_nowait().id == 6


async def test_a_full_buffer_cuts_the_client_off_and_the_process_limit_refuses_more(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hub = hub_of(sessions, client_buffer=2, max_clients=1)
    subscription = hub.subscribe(EventFilter(visible_types(Role.VIEWER)))
    with pytest.raises(TooManyClients):
        hub.subscribe(EventFilter(visible_types(Role.VIEWER)))
    async with sessions.begin() as session:
        for serial in range(3):
            await record_event(session, EventType.CHARGE_CREATED, {"serial": serial})
    await hub.read_once()
    assert subscription.overflowed
    hub.unsubscribe(subscription)
    assert hub.clients == 0


async def test_an_analysis_given_up_on_is_a_failed_analysis_finished_event(
    sessions: async_sessionmaker[AsyncSession], new_analysis: NewAnalysis
) -> None:
    analysis_id = await new_analysis(status="running", claimed_by="delivery-1", attempts=1)
    runner = AnalysisRunner(sessions, lambda *_: asyncio.sleep(0), RunnerLimits(5, 60, 3))  # type: ignore[arg-type]
    assert await runner.give_up(analysis_id, "delivery-1", "gave up")
    async with sessions() as session:
        (event,) = (await session.scalars(select(Event))).all()
    assert event.type == "analysis.finished"
    assert event.payload["status"] == "failed"
    assert event.payload["error"] == "gave up"
