"""Reading the audit trail: keyset pages newest first, filtered by entity, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.audit import trail as audit
from erp_api.audit.schemas import AuditQuery
from erp_api.audit.service import AuditService
from erp_api.errors import ValidationFailed
from erp_api.pagination import encode_cursor, encode_id_cursor


async def record(sessions: async_sessionmaker[AsyncSession], *entries: tuple[str, str]) -> None:
    async with sessions.begin() as session:
        await audit.record_many(
            session,
            [audit.AuditEntry(entity, entity_id, "update", after={"n": 1}) for entity, entity_id in entries],
        )


async def walk(service: AuditService, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        page = await service.page(
            AuditQuery.model_validate({**params, **({"cursor": cursor} if cursor else {})})
        )
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def test_pages_hold_every_event_once_newest_first(sessions: async_sessionmaker[AsyncSession]) -> None:
    await record(sessions, *[("charge", str(n)) for n in range(1, 8)])
    pages = await walk(AuditService(sessions), limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    entity_ids = [event["entity_id"] for page in pages for event in page]
    assert entity_ids == [str(n) for n in range(7, 0, -1)]
    ids = [event["id"] for page in pages for event in page]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 7


async def test_a_page_that_ends_exactly_at_the_last_event_has_no_next_cursor(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record(sessions, ("charge", "1"), ("charge", "2"))
    page = await AuditService(sessions).page(AuditQuery.model_validate({"limit": 2}))
    assert len(page["items"]) == 2 and page["next_cursor"] is None


async def test_filters_keep_one_kind_of_entity_or_one_entity(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await record(sessions, ("charge", "1"), ("quality_spec", "PUMP-A/d"), ("charge", "2"), ("charge", "1"))
    service = AuditService(sessions)
    charges = await walk(service, entity="charge", limit=1)
    assert [event["entity_id"] for page in charges for event in page] == ["1", "2", "1"]
    one = await service.page(AuditQuery.model_validate({"entity": "charge", "id": "1"}))
    assert [(event["entity"], event["entity_id"]) for event in one["items"]] == [("charge", "1")] * 2


async def test_an_event_shows_who_changed_what(sessions: async_sessionmaker[AsyncSession]) -> None:
    await record(sessions, ("charge", "9"))
    (event,) = (await AuditService(sessions).page(AuditQuery.model_validate({})))["items"]
    assert event["actor"] == {"key_id": None, "name": "system", "role": "admin"}
    assert (event["entity"], event["entity_id"], event["action"]) == ("charge", "9", "update")
    assert (event["before"], event["after"]) == (None, {"n": 1})


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        encode_id_cursor(2**63 - 1)[:-2],
        # A cursor of another listing (charges page by (time, id)) is not one of the trail's.
        encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), 5),
    ],
)
async def test_a_cursor_the_trail_did_not_issue_is_refused(
    sessions: async_sessionmaker[AsyncSession], cursor: str
) -> None:
    with pytest.raises(ValidationFailed):
        await AuditService(sessions).page(AuditQuery.model_validate({"cursor": cursor}))
