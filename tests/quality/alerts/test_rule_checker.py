"""The on-ingest rule check on both databases: the outbox the writers fill, and the check that empties
it into alerts (exactly one per violation), holds charges, and reads only a bounded part of a series."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager, MemoryBackend
from erp_api.audit.models import AuditEvent
from erp_api.charges.models import Charge, ChargeStatusChange
from erp_api.charges.repository import ChargeRepository
from erp_api.db import UTCDateTime, utcnow
from erp_api.quality.alerts.rule_checker import AUTO_HOLD, RuleChecker
from erp_api.quality.limits.repository import ControlLimitsRepository
from erp_api.quality.models import Measurement, QualitySpec, RuleCheck
from erp_api.quality.records import NewMeasurement
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.spc.rules import RULE_LOOKBACK, RULE_WINDOWS
from erp_api.quality.writer import MeasurementWriter
from tests.quality.alerts.helpers import (
    BEYOND_3_SIGMA,
    CENTER,
    SIGMA,
    expected_alerts,
    quiet,
    series_points,
    stored_alerts,
)

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
SKU, PARAMETER = "PUMP-A", "diameter"


@pytest.fixture
async def cache() -> AsyncIterator[CacheManager]:
    manager = CacheManager(MemoryBackend(max_entries=100, max_bytes=2**20), prefix="t", default_ttl=60)
    yield manager
    await manager.close()


@pytest.fixture
def writer(sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> MeasurementWriter:
    return MeasurementWriter(sessions, cache)


@pytest.fixture
def checker(sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> RuleChecker:
    return RuleChecker(sessions, cache)


async def watch(
    sessions: async_sessionmaker[AsyncSession],
    parameter: str = PARAMETER,
    *,
    limits: bool = True,
    **spec: Any,
) -> None:
    async with sessions.begin() as session:
        session.add(QualitySpec(product_sku=SKU, parameter=parameter, unit="mm", lsl=0.0, usl=100.0, **spec))
        if limits:
            await ControlLimitsRepository(session).append(
                SKU,
                parameter,
                center=CENTER,
                sigma=SIGMA,
                source="manual",
                basis=None,
                created_by="test",
                created_at=utcnow(),
            )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def post_batch(
    writer: MeasurementWriter,
    charge_id: int,
    values: Sequence[float],
    start: float = 0,
    parameter: str = PARAMETER,
) -> None:
    await writer.write_batch(charge_id, [(parameter, value, at(start + i)) for i, value in enumerate(values)])


async def post_single(writer: MeasurementWriter, charge_id: int, value: float, minute: float) -> int:
    (stored,) = await writer.write([NewMeasurement(charge_id, SKU, PARAMETER, value, at(minute))])
    assert not isinstance(stored, Exception), stored
    return stored.id


async def drain(checker: RuleChecker) -> int:
    """Check until the outbox is empty; the number of alerts opened."""
    opened = 0
    while True:
        outcome = await checker.check(100)
        opened += len(outcome.opened)
        if not outcome.claimed:
            return opened


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[RuleCheck]:
    async with sessions() as session:
        return list((await session.scalars(select(RuleCheck).order_by(RuleCheck.id))).all())


def opened_total(rule: str) -> float:
    return REGISTRY.get_sample_value("erp_quality_alerts_opened_total", {"rule": rule}) or 0.0


# The outbox -----------------------------------------------------------------------------------------


async def test_a_group_commit_enqueues_one_check_per_series_it_touched(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, writer: MeasurementWriter
) -> None:
    await watch(sessions)
    await watch(sessions, "weight")
    stored = await writer.write(
        [
            NewMeasurement(charge_id, SKU, PARAMETER, 10.0, at(0)),
            NewMeasurement(charge_id, SKU, "weight", 10.0, at(0)),
            NewMeasurement(charge_id, SKU, PARAMETER, 10.1, at(1)),
        ]
    )
    ids = [item.id for item in stored if not isinstance(item, Exception)]
    checks = await outbox(sessions)
    assert [(row.parameter, row.first_measurement_id, row.measurements) for row in checks] == [
        (PARAMETER, min(ids[0], ids[2]), 2),
        ("weight", ids[1], 1),
    ]
    async with sessions() as session:
        created = set((await session.scalars(select(Measurement.created_at))).all())
    assert {row.created_at for row in checks} == created


async def test_a_batch_enqueues_one_check_per_parameter_with_its_smallest_id(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, writer: MeasurementWriter
) -> None:
    await watch(sessions)
    await watch(sessions, "weight")
    await post_batch(writer, charge_id, quiet(3))
    items = [("weight" if i % 3 == 0 else PARAMETER, 10.0, at(10 + i)) for i in range(12)]
    await writer.write_batch(charge_id, items)
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Measurement.parameter, func.min(Measurement.id), func.count())
                .where(Measurement.measured_at >= at(10))
                .group_by(Measurement.parameter)
            )
        ).all()
    checks = await outbox(sessions)
    assert [(row.parameter, row.first_measurement_id, row.measurements) for row in checks[1:]] == sorted(
        (parameter, first, count) for parameter, first, count in rows
    )


# The check ------------------------------------------------------------------------------------------


async def test_violations_open_exactly_one_alert_each_naming_their_window(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    before = opened_total("N1")
    await post_batch(writer, charge_id, quiet(30))
    # Nine above the centre (N2 at the ninth), two beyond 2 sigma (N5), one beyond 3 sigma (N1).
    await post_batch(writer, charge_id, [10.2] * 8 + [12.5, 12.6, BEYOND_3_SIGMA], start=30)
    await post_single(writer, charge_id, 9.0, 41)
    opened = await drain(checker)

    points = await series_points(sessions)
    expected = expected_alerts(points)
    alerts = await stored_alerts(sessions)
    assert {"N1", "N2", "N5"} <= {rule for rule, _ in expected}
    assert sorted((alert.rule, alert.measurement_id) for alert in alerts) == sorted(expected)
    assert opened == len(expected)
    position = {point.id: index for index, point in enumerate(points)}
    for alert in alerts:
        end = position[alert.measurement_id]
        window = [point.id for point in points[end - RULE_WINDOWS[alert.rule] + 1 : end + 1]]
        assert alert.measurement_ids == window
        assert (alert.status, alert.center, alert.sigma, alert.charge_id) == (
            "open",
            CENTER,
            SIGMA,
            charge_id,
        )
        assert alert.limits_id is not None
    assert await outbox(sessions) == []
    assert opened_total("N1") == before + 1


async def test_checking_the_same_points_again_opens_nothing_new(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, [*quiet(20), BEYOND_3_SIGMA, BEYOND_3_SIGMA])
    (check,) = await outbox(sessions)
    first = await drain(checker)
    # The same commit checked again, as after a crash between the alert's commit and ... nothing:
    # the outbox row went with it; a copy stands for a second process that claimed it too.
    async with sessions.begin() as session:
        await session.execute(
            insert(RuleCheck).values(
                product_sku=check.product_sku,
                parameter=check.parameter,
                first_measurement_id=check.first_measurement_id,
                measurements=check.measurements,
                created_at=check.created_at,
            )
        )
    assert first == len(expected_alerts(await series_points(sessions))) > 0
    assert await drain(checker) == 0
    assert len(await stored_alerts(sessions)) == first


async def test_in_control_data_opens_no_alert(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, rules="western_electric")
    await post_batch(writer, charge_id, quiet(200))
    for minute in range(200, 210):
        await post_single(writer, charge_id, quiet(minute + 1)[-1], minute)
    assert await drain(checker) == 0
    assert await stored_alerts(sessions) == []
    assert await outbox(sessions) == []


async def test_one_check_reads_the_specs_and_limits_of_all_its_series_at_once(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    # The check holds the outbox rows it claimed (on SQLite the one write lock) until it commits: a
    # query per series would hold it a round trip per series longer.
    watched = ["diameter", "weight", "length", "width"]
    for parameter in watched:
        await watch(sessions, parameter)
    await watch(sessions, "height", limits=False)
    for parameter in [*watched, "height"]:
        await post_batch(writer, charge_id, [*quiet(20), BEYOND_3_SIGMA], parameter=parameter)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        outcome = await checker.check(100)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(outcome.claimed) == 5
    alerts = await stored_alerts(sessions)
    assert sorted({(alert.parameter, alert.rule) for alert in alerts}) == [(p, "N1") for p in sorted(watched)]
    reads = {
        table: sum(1 for s in statements if s.startswith("SELECT") and f"FROM {table}" in s.split("WHERE")[0])
        for table in ("quality_specs", "control_limits")
    }
    assert reads == {"quality_specs": 1, "control_limits": 1}, statements


async def test_a_series_without_limits_records_nothing_and_leaves_no_check_behind(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, limits=False)
    await post_batch(writer, charge_id, [BEYOND_3_SIGMA] * 20)
    outcome = await checker.check(100)
    assert len(outcome.claimed) == 1
    assert outcome.opened == []
    assert await stored_alerts(sessions) == []
    assert await outbox(sessions) == []


async def test_only_the_specs_rule_subset_is_checked(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, rule_ids="N2")
    await post_batch(writer, charge_id, [10.2] * 8 + [BEYOND_3_SIGMA])
    await drain(checker)
    points = await series_points(sessions)
    assert [(alert.rule, alert.measurement_id) for alert in await stored_alerts(sessions)] == [
        ("N2", points[8].id)
    ]


async def test_voided_points_count_nowhere(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, quiet(20))
    # A typo beyond 3 sigma, voided before the check; and a point below the centre, voided, that
    # would otherwise break a run of nine above it.
    await post_batch(writer, charge_id, [BEYOND_3_SIGMA, *[10.2] * 4, 8.0, *[10.2] * 5], start=20)
    async with sessions.begin() as session:
        await session.execute(
            update(Measurement)
            .where(Measurement.value.in_([BEYOND_3_SIGMA, 8.0]))
            .values(voided_at=utcnow(), void_reason="typo", voided_by="test")
        )
    await drain(checker)
    points = await series_points(sessions)
    alerts = [(alert.rule, alert.measurement_id) for alert in await stored_alerts(sessions)]
    # N2 only: the run of points above the centre is unbroken once 8.0 is voided; no N1.
    assert {rule for rule, _ in alerts} == {"N2"}
    assert sorted(alerts) == sorted(expected_alerts(points))
    assert all(point.value != BEYOND_3_SIGMA for point in points)


async def test_a_late_point_rechecks_the_windows_it_joins(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    # Five rising points with a gap: no trend of six yet.
    for minute, value in [(1, 9.1), (2, 9.3), (3, 9.5), (5, 9.9), (6, 10.1)]:
        await post_single(writer, charge_id, value, minute)
    assert await drain(checker) == 0
    # The missing point arrives late and completes six rising points ending at an earlier point.
    await post_single(writer, charge_id, 9.7, 4)
    assert await drain(checker) == 1
    points = await series_points(sessions)
    (alert,) = await stored_alerts(sessions)
    assert (alert.rule, alert.measurement_id) == ("N3", points[-1].id)
    assert alert.measurement_ids == [point.id for point in points]
    assert {(alert.rule, alert.measurement_id)} == expected_alerts(points)


@pytest.mark.postgres
async def test_concurrent_checks_of_overlapping_points_open_each_alert_once(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, quiet(20))
    for minute in range(20, 32):
        await post_single(writer, charge_id, BEYOND_3_SIGMA if minute % 3 else 10.2, minute)
    await drain(checker)  # the history
    # Every commit's row doubled, then checked by four checkers at once, one row each.
    async with sessions.begin() as session:
        await session.execute(
            text(
                "INSERT INTO rule_checks (product_sku, parameter, first_measurement_id, measurements, created_at)"
                " SELECT product_sku, parameter, min(id), count(*), created_at FROM measurements"
                " WHERE measured_at >= :start GROUP BY product_sku, parameter, created_at"
            ).bindparams(bindparam("start", type_=UTCDateTime)),
            {"start": at(20)},
        )
        await session.execute(
            text(
                "INSERT INTO rule_checks (product_sku, parameter, first_measurement_id, measurements, created_at)"
                " SELECT product_sku, parameter, first_measurement_id, measurements, created_at FROM rule_checks"
            )
        )
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM quality_alerts"))
    results = await asyncio.gather(*(checker.check(1) for _ in range(24)))
    assert sum(len(result.claimed) for result in results) == 24
    await drain(checker)
    alerts = await stored_alerts(sessions)
    assert sorted((alert.rule, alert.measurement_id) for alert in alerts) == sorted(
        expected_alerts(await series_points(sessions))
    )


# Auto hold ------------------------------------------------------------------------------------------


async def charge_status(sessions: async_sessionmaker[AsyncSession], charge_id: int) -> str:
    async with sessions() as session:
        charge = await ChargeRepository(session).get(charge_id)
    assert charge is not None
    return charge.status


async def status_changes(
    sessions: async_sessionmaker[AsyncSession], charge_id: int
) -> list[ChargeStatusChange]:
    async with sessions() as session:
        return await ChargeRepository(session).status_changes(charge_id, limit=100)


async def test_auto_hold_quarantines_the_charge_as_the_system(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, auto_hold=True)
    await post_batch(writer, charge_id, [*quiet(20), BEYOND_3_SIGMA])
    outcome = await checker.check(100)
    (alert,) = await stored_alerts(sessions)
    assert await charge_status(sessions, charge_id) == "quarantined"
    (change,) = await status_changes(sessions, charge_id)
    assert (change.from_status, change.to_status, change.actor_name, change.actor_key_id) == (
        "in_production",
        "quarantined",
        AUTO_HOLD.name,
        None,
    )
    assert change.reason is not None and str(alert.id) in change.reason
    assert [before.status for before, _after in outcome.held] == ["in_production"]
    async with sessions() as session:
        audited = (
            await session.scalars(
                select(AuditEvent).order_by(AuditEvent.id).where(AuditEvent.action != "record_measurements")
            )
        ).all()
    assert [(row.entity, row.action, row.actor_name) for row in audited] == [
        ("quality_alert", "open", "system"),
        ("charge", "transition", AUTO_HOLD.name),
    ]
    assert audited[1].after is not None and audited[1].after["status"] == "quarantined"
    # A second alert finds it quarantined already: no second status change.
    await post_batch(writer, charge_id, [BEYOND_3_SIGMA], start=30)
    await drain(checker)
    assert len(await status_changes(sessions, charge_id)) == 1


async def test_auto_hold_recalls_a_charge_released_between_commit_and_check(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, auto_hold=True)
    await post_batch(writer, charge_id, [*quiet(20), BEYOND_3_SIGMA])
    async with sessions.begin() as session:
        await session.execute(update(Charge).where(Charge.id == charge_id).values(status="released"))
    await drain(checker)
    assert await charge_status(sessions, charge_id) == "quarantined"
    assert [(c.from_status, c.to_status) for c in await status_changes(sessions, charge_id)] == [
        ("released", "quarantined")
    ]


async def test_without_auto_hold_an_alert_leaves_the_charge_as_it_is(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, [*quiet(20), BEYOND_3_SIGMA])
    assert await drain(checker) == 1
    assert await charge_status(sessions, charge_id) == "in_production"
    assert await status_changes(sessions, charge_id) == []


# Cost ----------------------------------------------------------------------------------------------


class RowCounter:
    """Counts the points the check's queries return (through MeasurementRepository)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows = 0
        for name in ("commit_ids", "points_before", "points_from"):
            monkeypatch.setattr(
                MeasurementRepository, name, self._counting(getattr(MeasurementRepository, name))
            )

    def _counting(self, method: Callable[..., Any]) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            points = await method(*args, **kwargs)
            self.rows += len(points)
            return points

        return counted


class ScannedRows:
    """On PostgreSQL: how many rows the scans of each checker query on ``measurements`` read."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.statements: list[tuple[str, Any]] = []
        self._engine = sessions.kw["bind"]

    def __enter__(self) -> ScannedRows:
        event.listen(self._engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM measurements" in statement:
            self.statements.append((statement, parameters))

    async def plans(self) -> list[dict[str, Any]]:
        plans = []
        async with self._engine.connect() as connection:
            for statement, parameters in self.statements:
                result = await connection.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
                )
                plans.append(result.scalar_one()[0]["Plan"])
        return plans


def scanned(plan: dict[str, Any]) -> tuple[int, set[str]]:
    """Rows read by the scan nodes of a plan (kept and filtered out), and the node types used."""
    rows = 0
    kinds = {plan["Node Type"]}
    if "Scan" in plan["Node Type"]:
        rows += (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        child_rows, child_kinds = scanned(child)
        rows += child_rows
        kinds |= child_kinds
    return rows, kinds


async def test_a_checks_cost_does_not_grow_with_the_series_history(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await watch(sessions)
    new_points = [10.2, 9.8, BEYOND_3_SIGMA, 10.1, 9.9]
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    fetched: list[int] = []
    read: list[int] = []
    # The history goes before everything measured so far, so the new points always come last.
    for history, start in [(1_000, -1_000), (19_000, -20_000)]:
        await post_batch(writer, charge_id, quiet(history), start=start)
        await drain(checker)
        minute = len(fetched) * 10
        for offset, value in enumerate(new_points):
            await post_single(writer, charge_id, value, minute + offset)
        counter = RowCounter(monkeypatch)
        with ScannedRows(sessions) as statements:
            assert await drain(checker) == 1
        monkeypatch.undo()
        fetched.append(counter.rows)
        if postgres:
            plans = [scanned(plan) for plan in await statements.plans()]
            assert all("Seq Scan" not in kinds for _, kinds in plans), plans
            read.append(sum(rows for rows, _ in plans))
    assert fetched[0] == fetched[1] <= 2 * len(new_points) + 2 * RULE_LOOKBACK
    if postgres:
        # Index scans with LIMITs: the same handful of rows whatever the history (the new points'
        # lookups read a few entries of neighbouring commits).
        assert read[0] == read[1] <= 4 * (len(new_points) + RULE_LOOKBACK), read


async def test_the_engine_and_the_alerts_agree_on_a_long_mixed_series(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    """Many commits of mixed data checked one by one: the alerts are the engine's on the whole series."""
    await watch(sessions)
    values: list[float] = []
    for block in range(12):
        chunk = quiet(17) if block % 2 else [10.2 + 0.1 * (i % 3) + 1.2 * (block % 3 == 0) for i in range(17)]
        if block % 4 == 1:
            chunk[5] = BEYOND_3_SIGMA
        values.extend(chunk)
    minute = 0
    for start in range(0, len(values), 23):
        part = values[start : start + 23]
        await post_batch(writer, charge_id, part, start=minute)
        minute += len(part)
        await drain(checker)
    points = await series_points(sessions)
    expected = expected_alerts(points)
    rules = {rule for rule, _ in expected}
    assert len(rules) >= 3
    assert sorted((a.rule, a.measurement_id) for a in await stored_alerts(sessions)) == sorted(expected)


async def test_a_run_longer_than_one_read_is_read_on_from_its_last_point(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, quiet(60), start=10)
    assert await drain(checker) == 0
    # Three points among the history. A read takes the new points and RULE_LOOKBACK more: the first
    # ends one point after the second new one, so the run is read on from there; the third new one
    # is further on than the run goes, and gets a run of its own.
    second = 21.5 + RULE_LOOKBACK
    late = [(PARAMETER, BEYOND_3_SIGMA, at(minute)) for minute in (20.5, second, 65.5)]
    await writer.write_batch(charge_id, late)
    reads = 0
    points_from = MeasurementRepository.points_from

    async def counted(self: MeasurementRepository, *args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await points_from(self, *args, **kwargs)

    monkeypatch.setattr(MeasurementRepository, "points_from", counted)
    await drain(checker)
    assert reads > 2  # two runs, the first of them read in more than one go
    points = await series_points(sessions)
    alerts = await stored_alerts(sessions)
    assert {(alert.rule, alert.measurement_id) for alert in alerts} == expected_alerts(points)
    assert {alert.measurement_id for alert in alerts if alert.rule == "N1"} == {
        point.id for point in points if point.value == BEYOND_3_SIGMA
    }


async def charge_of(sessions: async_sessionmaker[AsyncSession], number: str, status: str) -> int:
    async with sessions.begin() as session:
        (charge,) = await ChargeRepository(session).insert_many(
            [
                {
                    "charge_number": number,
                    "product_sku": SKU,
                    "quantity": Decimal(1),
                    "unit": "pcs",
                    "line": "L1",
                    "status": status,
                    "produced_at": T0,
                }
            ]
        )
    return charge.id


async def test_a_series_spans_charges_and_each_alert_names_the_charge_of_its_point(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions, auto_hold=True)
    other = await charge_of(sessions, "CH-2026-000002", "in_production")
    await post_batch(writer, charge_id, [10.2] * 5)
    await post_batch(writer, other, [10.2] * 3 + [BEYOND_3_SIGMA], start=5)
    await drain(checker)
    alerts = await stored_alerts(sessions)
    assert sorted((alert.rule, alert.charge_id) for alert in alerts) == [("N1", other), ("N2", other)]
    n2 = next(alert for alert in alerts if alert.rule == "N2")
    points = await series_points(sessions)
    assert n2.measurement_ids == [point.id for point in points[:9]]  # across both charges
    assert await charge_status(sessions, other) == "quarantined"
    assert await charge_status(sessions, charge_id) == "in_production"


async def test_a_commit_measured_in_two_distant_places_is_checked_around_each(
    sessions: async_sessionmaker[AsyncSession],
    charge_id: int,
    writer: MeasurementWriter,
    checker: RuleChecker,
) -> None:
    await watch(sessions)
    await post_batch(writer, charge_id, quiet(60), start=10)
    assert await drain(checker) == 0
    # One batch: a spike before the history and a run of nine above the centre after it.
    late = [(PARAMETER, BEYOND_3_SIGMA, at(0)), *((PARAMETER, 10.2, at(100 + i)) for i in range(9))]
    await writer.write_batch(charge_id, late)
    counter_before = len(await stored_alerts(sessions))
    await drain(checker)
    points = await series_points(sessions)
    alerts = await stored_alerts(sessions)
    assert counter_before == 0
    assert {(alert.rule, alert.measurement_id) for alert in alerts} == expected_alerts(points)
    assert {alert.rule for alert in alerts} >= {"N1", "N2"}
