"""QualityChargeGuards, the quality package's answers to the charge service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.guards import ChargeGuards
from erp_api.charges.repository import ChargeRepository
from erp_api.quality.charge_guards import MAX_OPEN_ALERT_IDS, QualityChargeGuards
from erp_api.quality.models import ALERT_STATUS_VALUES, Measurement, QualityAlert, RuleCheck

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def guards() -> ChargeGuards:
    return QualityChargeGuards()


async def other_charge(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions.begin() as session:
        (charge,) = await ChargeRepository(session).insert_many(
            [
                {
                    "charge_number": "CH-2026-000002",
                    "product_sku": "PUMP-A",
                    "quantity": Decimal(5),
                    "unit": "pcs",
                    "line": "L1",
                    "status": "in_production",
                    "produced_at": T0,
                }
            ]
        )
    return charge.id


async def add_alerts(sessions: async_sessionmaker[AsyncSession], rows: list[tuple[int, str]]) -> list[int]:
    """One alert per (charge_id, status), in order; their ids."""
    ids: list[int] = []
    async with sessions.begin() as session:
        for charge_id, status in rows:
            alert = QualityAlert(
                charge_id=charge_id,
                product_sku="PUMP-A",
                parameter="diameter",
                rule="N1",
                measurement_id=len(ids) + 1,
                measurement_ids=[len(ids) + 1],
                center=10.0,
                sigma=0.1,
                status=status,
            )
            session.add(alert)
            await session.flush()
            ids.append(alert.id)
    return ids


async def add_measurement(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, *, voided: bool = False
) -> None:
    async with sessions.begin() as session:
        session.add(
            Measurement(
                charge_id=charge_id,
                product_sku="PUMP-A",
                parameter="diameter",
                value=10.0,
                measured_at=T0,
                voided_at=T0 if voided else None,
                void_reason="typo" if voided else None,
                voided_by="test" if voided else None,
            )
        )


async def test_open_alert_ids_are_the_open_acknowledged_and_proposed_alerts_of_the_charge_ascending(
    guards: ChargeGuards, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    other = await other_charge(sessions)
    ids = await add_alerts(
        sessions,
        [(charge_id, status) for status in ALERT_STATUS_VALUES] + [(other, "open"), (charge_id, "open")],
    )
    by_status = dict(zip([*ALERT_STATUS_VALUES, "other", "last"], ids, strict=True))
    async with sessions() as session:
        found = await guards.open_alert_ids(session, charge_id)
        assert await guards.open_alert_ids(session, other) == [by_status["other"]]
    assert found == [
        by_status["open"],
        by_status["acknowledged"],
        by_status["action_proposed"],
        by_status["last"],
    ]


async def test_a_charge_without_alerts_or_with_only_closed_ones_has_no_open_alert_ids(
    guards: ChargeGuards, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    async with sessions() as session:
        assert await guards.open_alert_ids(session, charge_id) == []
    await add_alerts(sessions, [(charge_id, "resolved"), (charge_id, "dismissed")])
    async with sessions() as session:
        assert await guards.open_alert_ids(session, charge_id) == []


async def test_open_alert_ids_are_capped_at_the_lowest_ids(
    guards: ChargeGuards, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    rows = [
        {
            "charge_id": charge_id,
            "product_sku": "PUMP-A",
            "parameter": "diameter",
            "rule": "N1",
            "measurement_id": serial,
            "measurement_ids": [serial],
            "center": 10.0,
            "sigma": 0.1,
            "status": "open",
            "opened_at": T0,
            "updated_at": T0,
        }
        for serial in range(1, MAX_OPEN_ALERT_IDS + 6)
    ]
    async with sessions.begin() as session:
        await session.execute(insert(QualityAlert), rows)
    async with sessions() as session:
        found = await guards.open_alert_ids(session, charge_id)
        every = (await session.scalars(select(QualityAlert.id).order_by(QualityAlert.id))).all()
    assert found == every[:MAX_OPEN_ALERT_IDS]


async def test_has_measurements_counts_the_charges_own_measurements_voided_ones_included(
    guards: ChargeGuards, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    other = await other_charge(sessions)
    await add_measurement(sessions, other)
    async with sessions() as session:
        assert await guards.has_measurements(session, charge_id) is False
        assert await guards.has_measurements(session, other) is True
    await add_measurement(sessions, charge_id, voided=True)
    async with sessions() as session:
        assert await guards.has_measurements(session, charge_id) is True


async def test_rule_checks_are_pending_while_an_outbox_row_covers_a_measurement_of_the_charge(
    guards: ChargeGuards, sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> None:
    other = await other_charge(sessions)
    await add_measurement(sessions, charge_id)
    async with sessions() as session:
        (mine,) = (
            await session.scalars(select(Measurement.id).where(Measurement.charge_id == charge_id))
        ).all()
        assert await guards.rule_checks_pending(session, charge_id) is False
    async with sessions.begin() as session:
        session.add(
            RuleCheck(product_sku="PUMP-A", parameter="diameter", first_measurement_id=mine, measurements=1)
        )
    async with sessions() as session:
        assert await guards.rule_checks_pending(session, charge_id) is True
        # Another charge of the product without measurements in that stretch does not wait.
        assert await guards.rule_checks_pending(session, other) is False
    async with sessions.begin() as session:
        await session.execute(delete(RuleCheck))
        session.add(
            RuleCheck(
                product_sku="PUMP-A", parameter="diameter", first_measurement_id=mine + 1, measurements=1
            )
        )
    async with sessions() as session:
        # The pending check starts after the charge's measurement: it cannot concern this charge.
        assert await guards.rule_checks_pending(session, charge_id) is False
