"""The on-ingest rule check: the new points of each committed series against its control limits.

``RuleChecker.check`` claims outbox rows (``rule_checks.py``) and, in the same transaction, checks
each series they name and opens one alert per violation among the new points, then commits: the
claimed rows are gone exactly when their alerts are stored. A crash before the commit leaves the
rows to the next check; alerts are unique per (rule, measurement), so checking a point twice never
opens a second alert. What counts:

- A series is (product, parameter), across charges, in (measured_at, id) order, voided points left
  out. It is checked only once it has a spec and control limits; without limits nothing is recorded.
- The spec's rule set and subset (``spec_rules.rule_ids_of``) run on the engine of
  ``erp_api.quality.spc`` with the stored centre and sigma as the baseline.
- A violation is a rule's window (``RULE_WINDOWS``: the last point and the points before it that the
  rule looks at) that contains a new point; the alert names the window's last point
  (``measurement_id``) and all its points (``measurement_ids``). So each check reads the new points
  plus at most ``RULE_LOOKBACK`` points on each side of each run of them, by index: its cost does
  not grow with the series' history.
- Points that commit in measurement order (the usual case) are checked against exactly the series
  they end up in. A point committed after later-measured ones changes their windows; those are
  checked again, so no violation of the final series is missed, but an alert already opened on a
  window that a late point has since split stays open for a quality manager to dismiss.

With the spec's ``auto_hold``, a charge in production or released that gets an alert is moved to
quarantine in the same transaction, recorded as a status change by ``AUTO_HOLD``. Before it
inserts alerts the check locks their charges (``FOR SHARE``, or ``FOR UPDATE`` to hold them), which
a release's ``FOR UPDATE`` waits for: a release either sees the alert, or commits first and the
alert then opens on a released charge (which ``auto_hold`` recalls into quarantine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate, compress
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges import cache_tags as charge_tags
from erp_api.charges.repository import ChargeRepository
from erp_api.charges.states import ChargeStatus, IllegalTransition, check_transition
from erp_api.db import utcnow
from erp_api.events.log import EventType, record_event, record_events
from erp_api.observability.metrics import observe_alerts_opened
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.alerts.repository import AlertRepository, NewAlert
from erp_api.quality.alerts.rule_checks import ClaimedCheck, RuleCheckRepository, SeriesCommit
from erp_api.quality.limits.repository import ControlLimitsRepository
from erp_api.quality.models import ControlLimits, QualitySpec
from erp_api.quality.records import SeriesPoints
from erp_api.quality.repository import MeasurementRepository, SpecRepository
from erp_api.quality.spc.rules import RULE_LOOKBACK, RULE_WINDOWS, RuleName, RuleSet, find_violations
from erp_api.quality.spc.series import Baseline
from erp_api.quality.spec_rules import rule_ids_of, rule_set_of
from erp_api.security.principal import Principal
from erp_api.security.roles import Role
from erp_api.webhooks import outbox as webhook_outbox
from erp_api.webhooks.events import EventType as WebhookEvent

AUTO_HOLD: Final = Principal(None, "system (auto_hold)", Role.ADMIN)
"""Who a charge's automatic move into quarantine is attributed to."""

log = structlog.get_logger("erp_api.quality.alerts.rule_checker")


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule's window that contains a new point: the alert it should open."""

    rule: RuleName
    measurement_id: int
    """The window's last point, where the rule fires."""
    charge_id: int
    """The charge of that point."""
    measurement_ids: tuple[int, ...]


@dataclass(slots=True)
class CheckOutcome:
    """What one ``check`` did: the outbox rows it took, the alerts it opened, the charges it held."""

    claimed: list[int] = field(default_factory=list)
    opened: list[tuple[int, str, int]] = field(default_factory=list)
    """(alert id, rule, charge id) of each alert opened."""
    held: list[tuple[charge_tags.ChargeFacets, charge_tags.ChargeFacets]] = field(default_factory=list)
    """(before, after) of each charge moved to quarantine."""


class CheckFailed(Exception):
    """A check failed after claiming these outbox rows (they are back in the outbox)."""

    def __init__(self, claimed: list[int]) -> None:
        super().__init__(f"checking rule_checks {claimed[:10]} failed")
        self.claimed = claimed


def window_hits(
    window: SeriesPoints,
    start: int,
    *,
    rule_set: RuleSet,
    rules: Collection[RuleName],
    baseline: Baseline,
) -> list[RuleHit]:
    """The violations in ``window`` (consecutive points of a series) ending at index ``start`` or later
    whose rule window contains a new point (``SeriesPoints.new``).

    ``window`` must hold the ``RULE_LOOKBACK`` points before ``window[start]`` (or every point before
    it, if the series has fewer).
    """
    if len(window) <= start:
        return []
    # The engine of analyse_series with the baseline as the limits, without the capability it adds.
    violations = find_violations(window.values, baseline.center, baseline.sigma, rule_set)
    # new_before[i]: how many of window[:i] are new, so a window's new points are one subtraction.
    new_before = list(accumulate(window.new, initial=0))
    ids = window.ids
    hits = []
    for rule, index in violations:
        if index < start or rule not in rules:
            continue
        first = index - RULE_WINDOWS[rule] + 1
        if new_before[index + 1] - new_before[first] == 0:
            continue
        hits.append(RuleHit(rule, ids[index], window.charge_ids[index], tuple(ids[first : index + 1])))
    return hits


class RuleChecker:
    """Checks claimed outbox rows; the runner (``rule_check_runner.py``) calls ``check`` in a loop."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def check(
        self,
        limit: int,
        *,
        created_before: datetime | None = None,
        only: Collection[int] | None = None,
        skip: Collection[int] = (),
    ) -> CheckOutcome:
        """Claim up to ``limit`` outbox rows (see ``RuleCheckRepository.claim``), check them, commit,
        then invalidate what changed. Raises ``CheckFailed`` (rolled back) if the check fails."""
        outcome = CheckOutcome()
        try:
            async with self._sessions.begin() as session:
                claimed = await RuleCheckRepository(session).claim(
                    limit, created_before=created_before, only=only, skip=skip
                )
                outcome.claimed = [check.id for check in claimed]
                if claimed:
                    await self._check_claimed(session, claimed, outcome)
        except Exception as exc:
            if outcome.claimed:
                raise CheckFailed(outcome.claimed) from exc
            raise
        if outcome.opened:
            observe_alerts_opened(rule for _, rule, _ in outcome.opened)
            tags = set(quality_tags.alert_list_tags())
            for before, after in outcome.held:
                tags.update(charge_tags.tags_for_change(before, after))
            if not await self._cache.invalidate_tags(sorted(tags)):
                log.warning("alert_invalidation_missed", alerts=len(outcome.opened))
        return outcome

    async def _check_claimed(
        self, session: AsyncSession, claimed: Sequence[ClaimedCheck], outcome: CheckOutcome
    ) -> None:
        commits: dict[tuple[str, str], list[SeriesCommit]] = defaultdict(list)
        for check in claimed:
            commits[check.commit.series].append(check.commit)
        # The specs and limits of every series in one query each: this transaction holds the outbox
        # rows it claimed (on SQLite, the database's one write lock) until it commits.
        specs = await SpecRepository(session).get_many(commits.keys())
        limits = await ControlLimitsRepository(session).current_many(specs.keys())
        hits: dict[tuple[str, int], tuple[tuple[str, str], RuleHit]] = {}
        for series in sorted(commits):
            spec, current = specs.get(series), limits.get(series)
            if spec is None or current is None:
                continue
            for hit in await _series_hits(
                MeasurementRepository(session), series, commits[series], spec, current
            ):
                hits.setdefault((hit.rule, hit.measurement_id), (series, hit))
        if not hits:
            return
        hold = {hit.charge_id for series, hit in hits.values() if specs[series].auto_hold}
        await _lock_charges(session, {hit.charge_id for _, hit in hits.values()}, hold)
        now = utcnow()
        new_alerts = [
            _new_alert(series, hit, limits[series], now) for _, (series, hit) in sorted(hits.items())
        ]
        opened = await AlertRepository(session).insert_new(new_alerts)
        if not opened:
            return
        await audit.record_many(
            session,
            [
                audit.AuditEntry("quality_alert", alert.id, "open", after=_audited(alert.values))
                for alert in opened
            ],
        )
        await record_events(
            session,
            [
                (
                    EventType.ALERT_OPENED,
                    {"id": alert.id, **_audited(alert.values)},
                    alert.values.charge_id,
                    alert.values.product_sku,
                )
                for alert in opened
            ],
        )
        # Webhook deliveries in the same transaction; the webhook sweeper publishes them.
        await webhook_outbox.publish_many(
            session,
            WebhookEvent.ALERT_OPENED,
            [{"id": alert.id, **_audited(alert.values)} for alert in opened],
        )
        outcome.opened = [(alert.id, alert.values.rule, alert.values.charge_id) for alert in opened]
        to_hold: dict[int, list[int]] = defaultdict(list)
        for alert in opened:
            if specs[(alert.values.product_sku, alert.values.parameter)].auto_hold:
                to_hold[alert.values.charge_id].append(alert.id)
        for charge_id in sorted(to_hold):
            held = await _hold(session, charge_id, to_hold[charge_id])
            if held is not None:
                outcome.held.append(held)


async def _series_hits(
    repository: MeasurementRepository,
    series: tuple[str, str],
    commits: Sequence[SeriesCommit],
    spec: QualitySpec,
    limits: ControlLimits,
) -> list[RuleHit]:
    """The violations of one series whose windows contain a point of ``commits``.

    The series is read in its order in runs, each from a new point not read yet: ``RULE_LOOKBACK``
    points before it, then points until ``RULE_LOOKBACK`` follow the last new point of the run (or
    the series ends). Points that commit in measurement order make one run, from the earliest of
    the commits' first points (a primary-key lookup each); only if a run misses some new points (they
    were measured among older ones) are the new points' ids read, to start a run from each one missed.
    """
    product_sku, parameter = series
    rule_set, rules = rule_set_of(spec), frozenset(rule_ids_of(spec))
    if not rules:
        return []
    rows = [(commit.first_measurement_id, commit.created_at, commit.measurements) for commit in commits]
    baseline = Baseline(limits.center, limits.sigma)
    seen: set[int] = set()
    hits: list[RuleHit] = []

    async def run_from(start_at: tuple[datetime, int], pending: int) -> None:
        before = await repository.points_before(*series, start_at, RULE_LOOKBACK, new=rows)
        run = await _run_from(repository, series, start_at, rows, pending=pending)
        seen.update(compress(run.ids, run.new))
        start = len(before)
        before.extend(run)
        hits.extend(window_hits(before, start, rule_set=rule_set, rules=rules, baseline=baseline))

    expected = sum(count for _, _, count in rows)
    start_at = await repository.earliest_position([commit.first_measurement_id for commit in commits])
    if start_at is not None:
        await run_from(start_at, expected)
    if len(seen) < expected:  # new points among older ones (or voided since): find the rest
        missed = sorted(set(await repository.commit_ids(product_sku, parameter, rows)) - seen)
        for measurement_id in missed:
            if measurement_id in seen:
                continue
            seen.add(measurement_id)
            position = await repository.position(measurement_id)
            if position is not None:
                await run_from(position, len(missed))
    return hits


async def _run_from(
    repository: MeasurementRepository,
    series: tuple[str, str],
    start_at: tuple[datetime, int],
    new: Sequence[tuple[int, datetime, int]],
    *,
    pending: int,
) -> SeriesPoints:
    """The series from ``start_at`` on, until ``RULE_LOOKBACK`` points follow its last new point."""
    run = SeriesPoints()
    last_new = -1
    chunk = pending + RULE_LOOKBACK + 1
    position, inclusive = start_at, True
    while True:
        points = await repository.points_from(*series, position, chunk, inclusive=inclusive, new=new)
        if (last := points.last_new()) >= 0:
            last_new = len(run) + last
        run.extend(points)
        if len(points) < chunk or len(run) - 1 - last_new >= RULE_LOOKBACK:
            break
        # The points carry no time: the next chunk starts after the last one's position.
        found = await repository.position(run.ids[-1])
        if found is None:  # deleted since it was read (retention): check again in a new transaction
            raise RuntimeError(f"measurement {run.ids[-1]} was deleted during its series' rule check")
        position, inclusive = found, False
    return run.head(last_new + RULE_LOOKBACK + 1) if last_new >= 0 else SeriesPoints()


async def _lock_charges(session: AsyncSession, charge_ids: set[int], hold: set[int]) -> None:
    """Lock the charges alerts are about to name, in id order (the order a release locks in too)."""
    repository = ChargeRepository(session)
    for charge_id in sorted(charge_ids):
        if charge_id in hold:
            await repository.get(charge_id, for_update=True)
        else:
            await repository.states([charge_id], lock=True)


def _new_alert(series: tuple[str, str], hit: RuleHit, limits: ControlLimits, now: datetime) -> NewAlert:
    return NewAlert(
        charge_id=hit.charge_id,
        product_sku=series[0],
        parameter=series[1],
        rule=hit.rule,
        measurement_id=hit.measurement_id,
        measurement_ids=list(hit.measurement_ids),
        limits_id=limits.id,
        center=limits.center,
        sigma=limits.sigma,
        opened_at=now,
    )


def _audited(alert: NewAlert) -> dict[str, Any]:
    return {
        "charge_id": alert.charge_id,
        "product_sku": alert.product_sku,
        "parameter": alert.parameter,
        "rule": alert.rule,
        "measurement_id": alert.measurement_id,
        "measurement_ids": alert.measurement_ids,
        "limits_id": alert.limits_id,
        "status": "open",
    }


async def _hold(
    session: AsyncSession, charge_id: int, alert_ids: list[int]
) -> tuple[charge_tags.ChargeFacets, charge_tags.ChargeFacets] | None:
    """Move the charge to quarantine if its status allows; (before, after), or None if it stays."""
    repository = ChargeRepository(session)
    charge = await repository.get(charge_id, for_update=True)
    if charge is None:
        return None
    try:
        check_transition(ChargeStatus(charge.status), ChargeStatus.QUARANTINED)
    except IllegalTransition:
        return None  # already quarantined, or planned or rejected: nothing to hold
    before = charge_tags.ChargeFacets.of(charge)
    old_version = charge.version
    reason = f"auto_hold: quality alert {', '.join(str(alert_id) for alert_id in alert_ids)} opened"
    updated = await repository.update_if_version(
        charge_id, old_version, {"status": ChargeStatus.QUARANTINED.value}
    )
    if updated is None:  # cannot happen under the row lock; never hold a version not read
        return None
    await repository.record_status_change(
        charge_id, before.status, ChargeStatus.QUARANTINED.value, reason, actor=AUTO_HOLD
    )
    await audit.record(
        session,
        entity="charge",
        entity_id=charge_id,
        action="transition",
        before={"status": before.status, "version": old_version},
        after={"status": updated.status, "version": updated.version, "reason": reason},
        attribution=audit.Attribution(AUTO_HOLD, None),
    )
    change = {
        "charge_id": charge_id,
        "charge_number": updated.charge_number,
        "product_sku": updated.product_sku,
        "from": before.status,
        "to": updated.status,
        "reason": reason,
        "changed_at": updated.updated_at,
        "by": {"name": AUTO_HOLD.name, "role": AUTO_HOLD.role.value, "key_id": None},
    }
    await record_event(
        session, EventType.CHARGE_STATUS_CHANGED, change, charge_id=charge_id, product_sku=updated.product_sku
    )
    await webhook_outbox.publish(session, WebhookEvent.CHARGE_STATUS_CHANGED, change)
    return before, charge_tags.ChargeFacets.of(updated)
