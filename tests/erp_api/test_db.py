"""``insert_rows``: the bulk insert the rule check writes its alerts, audit rows and events with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.audit.models import AuditEvent
from erp_api.db import insert_rows
from erp_api.quality.models import QualityAlert

AT = datetime(2026, 3, 1, 6, 30, 0, 123456, tzinfo=UTC)


def audit_row(entity_id: int, **values: Any) -> dict[str, Any]:
    return {
        "occurred_at": AT,
        "actor_key_id": None,
        "actor_name": "system",
        "actor_role": "admin",
        "entity": "quality_alert",
        "entity_id": str(entity_id),
        "action": "open",
        "before": None,
        "after": {"rule": "N1", "measurement_ids": [3, 1, 2], "nested": {"ok": True, "x": 0.1}},
        "request_id": None,
        **values,
    }


def alert_row(charge_id: int, rule: str, measurement_id: int) -> dict[str, Any]:
    return {
        "charge_id": charge_id,
        "product_sku": "PUMP-A",
        "parameter": "diameter_mm",
        "rule": rule,
        "measurement_id": measurement_id,
        "measurement_ids": [measurement_id - 1, measurement_id],
        "limits_id": None,
        "center": 80.0,
        "sigma": 0.025,
        "status": "open",
        "opened_at": AT,
        "updated_at": AT,
    }


async def stored_audit(session: AsyncSession) -> list[tuple[Any, ...]]:
    # What is stored, JSON nulls and SQL NULLs told apart: the raw text of each column.
    rows = await session.execute(
        text(
            "SELECT entity_id, occurred_at, actor_key_id, actor_name, before IS NULL, "
            "CAST(before AS TEXT), CAST(after AS TEXT), request_id FROM audit_events ORDER BY id"
        )
    )
    return [tuple(row) for row in rows]


async def test_rows_are_stored_as_an_executemany_of_the_same_rows_stores_them(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    other_zone = AT.astimezone(timezone(timedelta(hours=-5)))
    rows = [audit_row(1), audit_row(2, occurred_at=other_zone, request_id="req-1", actor_key_id=7)]
    async with sessions.begin() as session:
        await session.execute(insert(AuditEvent), rows)
        expected = await stored_audit(session)
        await session.execute(text("DELETE FROM audit_events"))
        await insert_rows(session, AuditEvent, rows)
        assert await stored_audit(session) == expected
    async with sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
    assert [(event.entity_id, event.occurred_at, event.before, event.after) for event in events] == [
        (row["entity_id"], AT, None, row["after"]) for row in rows
    ]


async def test_rows_keep_their_order_and_conflicting_ones_are_skipped(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    returning = ("id", "rule", "measurement_id")
    key = ("rule", "measurement_id")
    async with sessions.begin() as session:
        first = await insert_rows(
            session,
            QualityAlert,
            [alert_row(charge_id, "N2", 9), alert_row(charge_id, "N1", 5)],
            skip_conflicts_on=key,
            returning=returning,
        )
        second = await insert_rows(
            session,
            QualityAlert,
            [alert_row(charge_id, "N1", 5), alert_row(charge_id, "N3", 7), alert_row(charge_id, "N1", 6)],
            skip_conflicts_on=key,
            returning=returning,
        )
        assert await insert_rows(session, QualityAlert, []) == []
    assert [(row.rule, row.measurement_id) for row in first] == [("N2", 9), ("N1", 5)]
    assert [(row.rule, row.measurement_id) for row in second] == [("N3", 7), ("N1", 6)]
    ids = [row.id for row in [*first, *second]]
    assert ids == sorted(ids)  # in the order given
    async with sessions() as session:
        alerts = (await session.scalars(select(QualityAlert).order_by(QualityAlert.id))).all()
    assert [(a.rule, a.measurement_id, a.measurement_ids, a.center, a.sigma) for a in alerts] == [
        ("N2", 9, [8, 9], 80.0, 0.025),
        ("N1", 5, [4, 5], 80.0, 0.025),
        ("N3", 7, [6, 7], 80.0, 0.025),
        ("N1", 6, [5, 6], 80.0, 0.025),
    ]
    assert all(alert.opened_at == AT and alert.limits_id is None for alert in alerts)


async def test_a_text_too_long_for_its_column_is_refused_not_cut(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce the length of a VARCHAR")
    with pytest.raises(DBAPIError, match="too long"):
        async with sessions.begin() as session:
            await insert_rows(session, AuditEvent, [audit_row(1, actor_name="x" * 101)])


async def test_a_naive_time_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Exception, match="naive datetimes are ambiguous"):
        async with sessions.begin() as session:
            await insert_rows(session, AuditEvent, [audit_row(1, occurred_at=AT.replace(tzinfo=None))])
