"""ChargeService as routes and tasks call it, on the real database (SQLite and PostgreSQL).

What a caller relies on: a write commits, then invalidates what it changed, so the next read shows
it; a stale version is refused without a change; a batch is all or nothing; pages cover every
charge once through ``next_cursor``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, MemoryBackend
from erp_api.audit.models import AuditEvent
from erp_api.charges import service as charge_service
from erp_api.charges.documents import unpack_document
from erp_api.charges.models import Charge, ChargeStatusChange
from erp_api.charges.schemas import ChargeCreate, ChargeListQuery, ChargeUpdate
from erp_api.charges.service import ChargeService
from erp_api.charges.states import ChargeStatus
from erp_api.errors import Conflict, NotFound, PreconditionFailed
from erp_api.security.principal import Principal, bind_principal, reset_principal
from erp_api.security.roles import Role

BASE = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@dataclass
class FakeGuards:
    """``ChargeGuards`` answering from fixed values (the real queries are tested in tests/quality)."""

    open_alerts: dict[int, list[int]] = field(default_factory=dict)
    measured: set[int] = field(default_factory=set)
    checks_pending: set[int] = field(default_factory=set)

    async def open_alert_ids(self, session: AsyncSession, charge_id: int) -> list[int]:
        return self.open_alerts.get(charge_id, [])

    async def rule_checks_pending(self, session: AsyncSession, charge_id: int) -> bool:
        return charge_id in self.checks_pending

    async def has_measurements(self, session: AsyncSession, charge_id: int) -> bool:
        return charge_id in self.measured


@pytest.fixture
def guards() -> FakeGuards:
    return FakeGuards()


@pytest.fixture
async def service(
    sessions: async_sessionmaker[AsyncSession], guards: FakeGuards
) -> AsyncIterator[ChargeService]:
    cache = CacheManager(MemoryBackend())
    yield ChargeService(sessions, cache, guards=guards)
    await cache.close()


def new_charge(serial: int, **overrides: Any) -> ChargeCreate:
    values: dict[str, Any] = {
        "charge_number": f"CH-2026-{serial:06d}",
        "product_sku": "PUMP-A",
        "quantity": Decimal("125.5"),
        "unit": "pcs",
        "line": "L1",
        "produced_at": BASE + timedelta(hours=serial),
        **overrides,
    }
    return ChargeCreate(**values)


async def read(service: ChargeService, charge_id: int) -> tuple[str, dict[str, Any]]:
    """(ETag, body) of the charge as a GET would send them."""
    etag, body = unpack_document(await service.document(charge_id))
    return etag, orjson.loads(body)


async def page(service: ChargeService, **query: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(await service.page(ChargeListQuery(**query)))
    return loaded


async def lookup(service: ChargeService, *numbers: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(await service.lookup(numbers))
    return loaded


async def audit_actions(sessions: async_sessionmaker[AsyncSession], charge_id: int) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.entity == "charge", AuditEvent.entity_id == str(charge_id))
        .order_by(AuditEvent.id)
    )
    async with sessions() as session:
        return list((await session.scalars(stmt)).all())


# Create and read --------------------------------------------------------------------------------


async def test_create_stores_a_planned_charge_at_version_1_that_reads_back_with_its_etag(
    service: ChargeService,
) -> None:
    created = await service.create(new_charge(1, quantity=Decimal("10.25")))
    etag, body = await read(service, created.id)
    assert created.version == 1
    assert created.status == ChargeStatus.PLANNED
    assert etag == f'"c{created.id}v1"'
    assert body["charge_number"] == "CH-2026-000001"
    assert body["quantity"] == "10.250"
    assert body["status"] == "planned"
    assert body["version"] == 1


async def test_a_missing_charge_is_not_found(service: ChargeService) -> None:
    with pytest.raises(NotFound):
        await service.document(999_999)


async def test_a_document_is_served_from_the_cache_without_touching_the_database(
    service: ChargeService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge = await service.create(new_charge(1))
    first = await service.document(charge.id)
    # A change behind the service's back (no invalidation): the cached document still answers.
    async with sessions.begin() as session:
        await session.execute(update(Charge).where(Charge.id == charge.id).values(line="L9"))
    assert await service.document(charge.id) == first


async def test_cached_documents_follow_updates_for_more_charges_than_the_entries_kept(
    service: ChargeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service keeps each charge's cache entry worked out, for a bounded number of charges."""
    monkeypatch.setattr(charge_service, "MAX_DOCUMENT_ENTRIES", 2)
    charges = [await service.create(new_charge(number)) for number in range(1, 4)]
    for charge in charges:
        assert await service.cached_document(charge.id) is None  # nothing cached yet
        await service.document(charge.id)
        assert await service.cached_document(charge.id) == await service.document(charge.id)
    await service.update(charges[0].id, ChargeUpdate(line="L2"), if_match=None)
    for charge in charges:
        document = await service.cached_document(charge.id)
        assert document is None if charge is charges[0] else document is not None
    assert len(service._document_entries) <= 2
    etag, body = unpack_document(await service.document(charges[0].id))
    assert (etag, orjson.loads(body)["line"]) == (f'"c{charges[0].id}v2"', "L2")


# Update -----------------------------------------------------------------------------------------


async def test_an_update_invalidates_the_cached_document_so_the_next_read_shows_the_new_version(
    service: ChargeService,
) -> None:
    charge = await service.create(new_charge(1))
    await service.document(charge.id)  # now cached
    updated = await service.update(charge.id, ChargeUpdate(quantity=Decimal("99")), if_match=None)
    assert updated.version == 2
    etag, body = await read(service, charge.id)
    assert etag == f'"c{charge.id}v2"'
    assert (body["version"], body["quantity"]) == (2, "99.000")


async def test_an_update_with_the_current_etag_applies_and_a_stale_one_is_refused_without_change(
    service: ChargeService,
) -> None:
    charge = await service.create(new_charge(1))
    v1 = f'"c{charge.id}v1"'
    await service.update(charge.id, ChargeUpdate(line="L2"), if_match=v1)
    with pytest.raises(PreconditionFailed) as refused:
        await service.update(charge.id, ChargeUpdate(line="L3"), if_match=v1)
    assert refused.value.headers == {"ETag": f'"c{charge.id}v2"'}
    etag, body = await read(service, charge.id)
    assert etag == f'"c{charge.id}v2"'
    assert body["line"] == "L2"


@pytest.mark.parametrize("if_match", ["*", '"c{id}v1"', '"other", "c{id}v1"', ' W/"other" ,"c{id}v1"'])
async def test_if_match_accepts_a_wildcard_or_a_list_containing_the_current_strong_tag(
    service: ChargeService, if_match: str
) -> None:
    charge = await service.create(new_charge(1))
    header = if_match.replace("{id}", str(charge.id))
    updated = await service.update(charge.id, ChargeUpdate(unit="kg"), if_match=header)
    assert (updated.version, updated.unit) == (2, "kg")


@pytest.mark.parametrize("if_match", ['W/"c{id}v1"', '"other", W/"c{id}v1"', "c{id}v1", '""'])
async def test_if_match_refuses_a_weak_or_malformed_tag_even_when_it_names_the_current_version(
    service: ChargeService, if_match: str
) -> None:
    # RFC 9110 §13.1.1: If-Match uses the strong comparison, where a weak tag never matches.
    charge = await service.create(new_charge(1))
    header = if_match.replace("{id}", str(charge.id))
    with pytest.raises(PreconditionFailed) as refused:
        await service.update(charge.id, ChargeUpdate(unit="kg"), if_match=header)
    assert refused.value.headers == {"ETag": f'"c{charge.id}v1"'}
    _etag, body = await read(service, charge.id)
    assert (body["unit"], body["version"]) == ("pcs", 1)


@pytest.mark.parametrize("status", [ChargeStatus.RELEASED, ChargeStatus.REJECTED])
async def test_a_released_or_rejected_charge_cannot_be_updated(
    service: ChargeService, status: ChargeStatus
) -> None:
    charge = await service.create(new_charge(1))
    await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None)
    await service.transition(charge.id, status, None)
    with pytest.raises(Conflict) as refused:
        await service.update(charge.id, ChargeUpdate(quantity=Decimal("1")), if_match=None)
    assert refused.value.extra == {"current": status.value}
    _etag, body = await read(service, charge.id)
    assert (body["quantity"], body["version"]) == ("125.500", 3)


async def test_a_recalled_charge_can_be_corrected_again(service: ChargeService) -> None:
    charge = await service.create(new_charge(1))
    for status in (ChargeStatus.IN_PRODUCTION, ChargeStatus.RELEASED, ChargeStatus.QUARANTINED):
        await service.transition(charge.id, status, None)
    updated = await service.update(charge.id, ChargeUpdate(quantity=Decimal("1")), if_match=None)
    assert updated.quantity == Decimal("1")


async def test_an_update_of_a_missing_charge_is_not_found(service: ChargeService) -> None:
    with pytest.raises(NotFound):
        await service.update(999_999, ChargeUpdate(line="L2"), if_match=None)


async def test_an_update_moves_the_charge_between_cached_filtered_lists(service: ChargeService) -> None:
    charge = await service.create(new_charge(1, line="L1"))
    assert [item["id"] for item in (await page(service, line="L1"))["items"]] == [charge.id]
    assert (await page(service, line="L2"))["items"] == []
    await service.update(charge.id, ChargeUpdate(line="L2"), if_match=None)
    assert (await page(service, line="L1"))["items"] == []
    assert [item["line"] for item in (await page(service, line="L2"))["items"]] == ["L2"]


# Transition and delete --------------------------------------------------------------------------


async def test_a_transition_changes_the_status_records_its_reason_and_refreshes_cached_reads(
    service: ChargeService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge = await service.create(new_charge(1))
    await service.document(charge.id)
    assert len((await page(service, status="planned"))["items"]) == 1
    moved = await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, "line started")
    assert (moved.status, moved.version) == ("in_production", 2)
    _etag, body = await read(service, charge.id)
    assert body["status"] == "in_production"
    assert (await page(service, status="planned"))["items"] == []
    assert [item["id"] for item in (await page(service, status="in_production"))["items"]] == [charge.id]
    async with sessions() as session:
        history = (await session.scalars(select(ChargeStatusChange))).all()
    assert [(row.from_status, row.to_status, row.reason) for row in history] == [
        ("planned", "in_production", "line started")
    ]


async def test_an_illegal_transition_is_a_conflict_naming_the_allowed_targets_and_changes_nothing(
    service: ChargeService,
) -> None:
    charge = await service.create(new_charge(1))
    with pytest.raises(Conflict) as refused:
        await service.transition(charge.id, ChargeStatus.RELEASED, None)
    assert refused.value.extra == {"current": "planned", "allowed": ["in_production"]}
    _etag, body = await read(service, charge.id)
    assert (body["status"], body["version"]) == ("planned", 1)


async def test_deleting_a_planned_charge_removes_it_from_every_cached_read(service: ChargeService) -> None:
    charge = await service.create(new_charge(1))
    await service.document(charge.id)
    assert len((await page(service))["items"]) == 1
    assert list((await lookup(service, charge.charge_number))["found"]) == [charge.charge_number]
    await service.delete(charge.id)
    with pytest.raises(NotFound):
        await service.document(charge.id)
    assert (await page(service))["items"] == []
    assert (await lookup(service, charge.charge_number))["missing"] == [charge.charge_number]
    with pytest.raises(NotFound):
        await service.delete(charge.id)


async def test_a_charge_that_went_into_production_cannot_be_deleted(service: ChargeService) -> None:
    charge = await service.create(new_charge(1))
    await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None)
    with pytest.raises(Conflict) as refused:
        await service.delete(charge.id)
    assert refused.value.extra == {"current": "in_production"}
    _etag, body = await read(service, charge.id)
    assert body["status"] == "in_production"


async def test_every_write_is_in_the_audit_trail_with_the_fields_it_changed(
    service: ChargeService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge = await service.create(new_charge(1))
    await service.update(charge.id, ChargeUpdate(quantity=Decimal("7")), if_match=None)
    await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None)
    await service.transition(charge.id, ChargeStatus.REJECTED, "scrap")
    events = await audit_actions(sessions, charge.id)
    assert [event.action for event in events] == ["create", "update", "transition", "transition"]
    assert events[0].before is None
    assert events[0].after is not None and events[0].after["charge_number"] == "CH-2026-000001"
    assert events[1].before == {"quantity": "125.500", "version": 1}
    assert events[1].after == {"quantity": "7.000", "version": 2}
    assert events[2].after == {"status": "in_production", "version": 3, "reason": None}
    assert events[3].after == {"status": "rejected", "version": 4, "reason": "scrap"}


async def test_a_transition_with_a_stale_if_match_is_refused_with_the_current_etag(
    service: ChargeService,
) -> None:
    charge = await service.create(new_charge(1))
    await service.update(charge.id, ChargeUpdate(line="L2"), if_match=None)
    with pytest.raises(PreconditionFailed) as refused:
        await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None, if_match=f'"c{charge.id}v1"')
    assert refused.value.headers == {"ETag": f'"c{charge.id}v2"'}
    _etag, body = await read(service, charge.id)
    assert (body["status"], body["version"]) == ("planned", 2)
    moved = await service.transition(
        charge.id, ChargeStatus.IN_PRODUCTION, None, if_match=f'"c{charge.id}v2"'
    )
    assert moved.status == "in_production"


async def test_a_release_is_refused_while_the_guards_report_open_alerts(
    service: ChargeService, guards: FakeGuards, sessions: async_sessionmaker[AsyncSession]
) -> None:
    charge = await service.create(new_charge(1))
    await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None)
    guards.open_alerts[charge.id] = [3, 7]
    with pytest.raises(Conflict) as refused:
        await service.transition(charge.id, ChargeStatus.RELEASED, "looks fine")
    assert refused.value.extra == {"current": "in_production", "open_alert_ids": [3, 7]}
    assert "3, 7" in refused.value.detail
    # Other decisions stay open: quarantine and reject need no clean record.
    await service.transition(charge.id, ChargeStatus.QUARANTINED, None)
    guards.open_alerts[charge.id] = []
    assert (await service.transition(charge.id, ChargeStatus.RELEASED, None)).status == "released"
    async with sessions() as session:
        steps = (await session.scalars(select(ChargeStatusChange.to_status))).all()
    assert "released" in steps and steps.count("released") == 1


async def test_a_release_waits_while_rule_checks_of_the_charge_are_pending(
    service: ChargeService, guards: FakeGuards
) -> None:
    charge = await service.create(new_charge(1))
    await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, None)
    guards.checks_pending.add(charge.id)
    with pytest.raises(Conflict) as refused:
        await service.transition(charge.id, ChargeStatus.RELEASED, None)
    assert refused.value.extra == {"current": "in_production", "rule_checks_pending": True}
    assert refused.value.headers == {"Retry-After": "1"}
    guards.checks_pending.clear()
    assert (await service.transition(charge.id, ChargeStatus.RELEASED, None)).status == "released"


async def test_a_planned_charge_with_measurements_cannot_be_deleted(
    service: ChargeService, guards: FakeGuards
) -> None:
    charge = await service.create(new_charge(1))
    guards.measured.add(charge.id)
    with pytest.raises(Conflict) as refused:
        await service.delete(charge.id)
    assert "measurements" in refused.value.detail
    _etag, body = await read(service, charge.id)
    assert body["status"] == "planned"


# History ----------------------------------------------------------------------------------------


async def test_the_history_lists_every_change_oldest_first_with_its_actor(service: ChargeService) -> None:
    charge = await service.create(new_charge(1))
    await service.document(charge.id)
    assert orjson.loads(await service.history(charge.id)) == {
        "charge_id": charge.id,
        "items": [],
        "truncated": False,
    }
    manager = Principal(42, "Quality Q.", Role.QUALITY_MANAGER)
    token = bind_principal(manager)
    try:
        await service.transition(charge.id, ChargeStatus.IN_PRODUCTION, "line started")
        await service.transition(charge.id, ChargeStatus.QUARANTINED, "burr on lot 7")
    finally:
        reset_principal(token)
    # Outside a request the system is the actor.
    await service.transition(charge.id, ChargeStatus.REJECTED, None)
    items = orjson.loads(await service.history(charge.id))["items"]
    assert [(item["from"], item["to"], item["reason"]) for item in items] == [
        ("planned", "in_production", "line started"),
        ("in_production", "quarantined", "burr on lot 7"),
        ("quarantined", "rejected", None),
    ]
    assert items[0]["by"] == {"name": "Quality Q.", "role": "quality_manager", "key_id": 42}
    assert items[2]["by"] == {"name": "system", "role": "admin", "key_id": None}
    times = [item["changed_at"] for item in items]
    assert times == sorted(times)


async def test_the_history_of_a_missing_charge_is_not_found(service: ChargeService) -> None:
    with pytest.raises(NotFound):
        await service.history(999_999)


async def test_the_history_is_bounded_and_says_when_it_is_cut(
    service: ChargeService, sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("erp_api.charges.service.MAX_HISTORY", 2)
    charge = await service.create(new_charge(1))
    for status in (ChargeStatus.IN_PRODUCTION, ChargeStatus.RELEASED, ChargeStatus.QUARANTINED):
        await service.transition(charge.id, status, None)
    history = orjson.loads(await service.history(charge.id))
    assert [item["to"] for item in history["items"]] == ["in_production", "released"]
    assert history["truncated"] is True


# Batches ----------------------------------------------------------------------------------------


async def test_a_batch_is_stored_in_request_order_and_shows_in_reads_cached_before(
    service: ChargeService,
) -> None:
    numbers = ["CH-2026-000003", "CH-2026-000001", "CH-2026-000002"]
    assert (await page(service))["items"] == []
    assert (await lookup(service, *numbers))["missing"] == sorted(numbers)
    created = await service.create_many([new_charge(3), new_charge(1), new_charge(2)])
    assert [charge.charge_number for charge in created] == numbers
    assert len((await page(service))["items"]) == 3
    found = await lookup(service, *numbers)
    assert (sorted(found["found"]), found["missing"]) == (sorted(numbers), [])


async def test_a_batch_with_one_taken_number_stores_nothing_and_names_that_item(
    service: ChargeService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    taken = await service.create(new_charge(2))
    with pytest.raises(Conflict) as refused:
        await service.create_many([new_charge(1), new_charge(2), new_charge(3)])
    assert refused.value.extra == {"charge_number": "CH-2026-000002", "index": 1}
    assert "items[1]" in refused.value.detail
    result = await lookup(service, "CH-2026-000001", "CH-2026-000002", "CH-2026-000003")
    assert list(result["found"]) == ["CH-2026-000002"]
    assert result["missing"] == ["CH-2026-000001", "CH-2026-000003"]
    async with sessions() as session:
        audited = (await session.scalars(select(AuditEvent.entity_id))).all()
    assert audited == [str(taken.id)]  # the refused batch left no trace in the trail either


async def test_a_batch_repeating_a_number_is_refused_before_anything_is_stored(
    service: ChargeService,
) -> None:
    with pytest.raises(Conflict) as refused:
        await service.create_many([new_charge(1), new_charge(2), new_charge(1, line="L2")])
    assert refused.value.extra == {"index": 2, "charge_number": "CH-2026-000001"}
    assert (await page(service))["items"] == []


async def test_creating_a_taken_number_is_a_conflict_naming_the_number(service: ChargeService) -> None:
    await service.create(new_charge(1))
    with pytest.raises(Conflict) as refused:
        await service.create(new_charge(1, line="L2"))
    assert refused.value.extra == {"charge_number": "CH-2026-000001"}


# Pages and lookups ------------------------------------------------------------------------------


async def test_pages_reach_every_charge_once_newest_first_by_following_next_cursor(
    service: ChargeService,
) -> None:
    # Two charges share each production time, so the order must also break ties (by id, descending).
    created = await service.create_many(
        [new_charge(serial, produced_at=BASE + timedelta(hours=serial // 2)) for serial in range(1, 10)]
    )
    expected = [charge.id for charge in sorted(created, key=lambda c: (c.produced_at, c.id), reverse=True)]
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        result = await page(service, limit=4, cursor=cursor)
        pages += 1
        seen.extend(item["id"] for item in result["items"])
        cursor = result["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


async def test_a_page_holds_only_charges_matching_every_filter(service: ChargeService) -> None:
    await service.create_many(
        [
            new_charge(1, product_sku="PUMP-A", line="L1"),
            new_charge(2, product_sku="PUMP-B", line="L1"),
            new_charge(3, product_sku="PUMP-A", line="L2"),
            new_charge(4, product_sku="PUMP-A", line="L1"),
        ]
    )
    result = await page(
        service,
        product_sku="PUMP-A",
        line="L1",
        produced_from=BASE + timedelta(hours=2),
        produced_to=BASE + timedelta(hours=4),
    )
    assert [item["charge_number"] for item in result["items"]] == ["CH-2026-000004"]
    assert result["next_cursor"] is None


async def test_a_lookup_answers_each_number_once_as_found_or_missing(service: ChargeService) -> None:
    await service.create_many([new_charge(1), new_charge(2)])
    result = await lookup(service, "CH-2026-000002", "NOPE-1", "CH-2026-000001", "NOPE-1")
    assert sorted(result["found"]) == ["CH-2026-000001", "CH-2026-000002"]
    assert result["found"]["CH-2026-000001"]["quantity"] == "125.500"
    assert result["missing"] == ["NOPE-1"]
