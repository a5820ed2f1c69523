"""Use cases of quality alerts: list and read them (cached), move them along their life cycle.

Alerts are opened by the on-ingest rule check (``rule_checker.py``), never through the API. A
quality manager moves one along ``alert_states``; each move records who made it and why on the
alert and in the audit trail, commits, then invalidates the cached reads of the alert.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.db import utcnow
from erp_api.errors import Conflict, NotFound
from erp_api.events.log import EventType, record_event
from erp_api.observability.metrics import set_open_alerts, set_rule_check_backlog
from erp_api.pagination import decode_id_cursor, page_of, rows_to_fetch
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.alerts.repository import AlertFilter, AlertRepository
from erp_api.quality.alerts.rule_checks import RuleCheckRepository
from erp_api.quality.alerts.schemas import AlertListQuery
from erp_api.quality.alerts.states import AlertStatus, IllegalAlertTransition, check_transition
from erp_api.quality.models import QualityAlert
from erp_api.quality.spc.chart import zone_line
from erp_api.quality.spc.rules import RULE_WINDOWS
from erp_api.security.principal import current_principal
from erp_api.webhooks import outbox as webhook_outbox
from erp_api.webhooks.events import EventType as WebhookEvent

NAMESPACE = "alerts"
AUDIT_ENTITY = "quality_alert"


def alert_dict(alert: QualityAlert) -> dict[str, Any]:
    """An alert as the API shows it."""
    lcl, ucl = zone_line(alert.center, alert.sigma, 3)
    return {
        "id": alert.id,
        "charge_id": alert.charge_id,
        "product_sku": alert.product_sku,
        "parameter": alert.parameter,
        "rule": alert.rule,
        "measurement_id": alert.measurement_id,
        "measurement_ids": alert.measurement_ids,
        "limits": {
            "id": alert.limits_id,
            "center": alert.center,
            "sigma": alert.sigma,
            "ucl": ucl,
            "lcl": lcl,
        },
        "status": alert.status,
        "reason": alert.reason,
        "opened_at": alert.opened_at,
        "updated_at": alert.updated_at,
        "changed_by": alert.changed_by,
    }


class AlertService:
    """Reads and transitions of alerts; ``on_change`` is told after each transition (gauges)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: CacheManager,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._on_change = on_change

    async def page(self, query: AlertListQuery) -> bytes:
        """Alerts matching the query's filters, newest first, cached until an alert opens or moves."""
        before_id = decode_id_cursor(query.cursor)
        where = AlertFilter(
            statuses=[status.value for status in query.status] if query.status else None,
            charge_id=query.charge_id,
            product_sku=query.product_sku,
            parameter=query.parameter,
            rule=query.rule,
        )

        async def load() -> bytes:
            async with self._sessions() as session:
                rows = await AlertRepository(session).page(
                    where, before_id=before_id, limit=rows_to_fetch(query.limit)
                )
            return orjson.dumps(page_of(rows, query.limit, key=lambda alert: alert.id).document(alert_dict))

        return await self._cache.get_or_load(
            NAMESPACE,
            key=("list", *sorted(query.model_dump(mode="json").items())),
            loader=load,
            tags=quality_tags.alert_list_tags(),
        )

    async def document(self, alert_id: int) -> bytes:
        async def load() -> bytes:
            async with self._sessions() as session:
                alert = await AlertRepository(session).get(alert_id)
            if alert is None:
                raise NotFound(f"quality alert {alert_id} does not exist")
            return orjson.dumps(alert_dict(alert))

        return await self._cache.get_or_load(
            NAMESPACE, key=("alert", alert_id), loader=load, tags=[quality_tags.alert_tag(alert_id)]
        )

    async def transition(self, alert_id: int, target: AlertStatus, reason: str | None) -> QualityAlert:
        """Move an alert to ``target``: 404 if there is no such alert, 409 (naming the allowed
        targets) if its life cycle has no such step or it moved concurrently."""
        async with self._sessions.begin() as session:
            repository = AlertRepository(session)
            alert = await repository.get(alert_id)
            if alert is None:
                raise NotFound(f"quality alert {alert_id} does not exist")
            current = AlertStatus(alert.status)
            try:
                check_transition(current, target)
            except IllegalAlertTransition as exc:
                raise Conflict(
                    str(exc),
                    extra={"current": exc.current.value, "allowed": [status.value for status in exc.allowed]},
                ) from None
            before = {"status": alert.status, "reason": alert.reason, "changed_by": alert.changed_by}
            who = current_principal().name[:100]
            # Conditional on the status read: of two concurrent moves, the second finds it changed.
            updated = await repository.update_if_status(
                alert_id,
                current.value,
                {"status": target.value, "reason": reason, "changed_by": who, "updated_at": utcnow()},
            )
            if updated is None:
                raise Conflict(f"quality alert {alert_id} changed concurrently; read it and retry")
            await audit.record(
                session,
                entity=AUDIT_ENTITY,
                entity_id=alert_id,
                action="transition",
                before=before,
                after={"status": updated.status, "reason": reason, "changed_by": who},
            )
            await webhook_outbox.publish(
                session, WebhookEvent.ALERT_CHANGED, {**alert_dict(updated), "from": current.value}
            )
            await record_event(
                session,
                EventType.ALERT_CHANGED,
                {**alert_dict(updated), "from": current.value},
                charge_id=updated.charge_id,
                product_sku=updated.product_sku,
            )
        await self._cache.invalidate_tags(quality_tags.tags_for_alert_change(alert_id))
        if self._on_change is not None:
            self._on_change()
        return updated


async def refresh_alert_gauges(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Count open alerts per rule and the rule-check backlog into the metrics (two COUNTs)."""
    async with sessions() as session:
        counts = await AlertRepository(session).open_counts()
        backlog = await RuleCheckRepository(session).backlog()
    set_open_alerts({rule: counts.get(rule, 0) for rule in sorted({*RULE_WINDOWS, *counts})})
    set_rule_check_backlog(backlog)
