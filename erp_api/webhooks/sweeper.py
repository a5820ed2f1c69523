"""The sweeper: publishes delivery tasks nobody published, and gives up on abandoned last attempts.

Run periodically (``ERP_WEBHOOK_SWEEP_INTERVAL_SECONDS``). A pending delivery that is due and
whose task was not published within ``ERP_WEBHOOK_REQUEUE_AFTER_SECONDS`` gets a new task: its
publisher died after the commit, the broker was down, the message was lost, its worker died
during an attempt (the claim expired), or its retry was left to the sweeper. A task published
twice is harmless (the claim lets one through); a delivery never published is what this prevents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.db import utcnow
from erp_api.jobs.dispatch import BrokerUnavailable, TaskClient
from erp_api.webhooks.policy import DeliveryPolicy
from erp_api.webhooks.repository import WebhookRepository

SWEEP_BATCH: Final = 1_000
"""Tasks published per sweep at most; the most overdue first, the rest on the next sweep."""
ABANDONED_ERROR: Final = "the worker stopped during the last attempt; no answer was recorded"

log = structlog.get_logger("erp_api.webhooks")


@dataclass(frozen=True)
class SweepReport:
    published: int
    failed: int
    broker_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class WebhookSweeper:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], tasks: TaskClient, policy: DeliveryPolicy
    ) -> None:
        self._sessions = sessions
        self._tasks = tasks
        self._policy = policy

    async def sweep(self) -> SweepReport:
        now = utcnow()
        async with self._sessions.begin() as session:
            repository = WebhookRepository(session)
            failed = await repository.fail_spent(
                now=now, max_attempts=self._policy.max_attempts, error=ABANDONED_ERROR
            )
            due = await repository.mark_due_enqueued(
                now=now,
                published_before=now - timedelta(seconds=self._policy.requeue_after_seconds),
                limit=SWEEP_BATCH,
            )
        published = 0
        for delivery_id in due:
            try:
                await self._tasks.enqueue_webhook_delivery(delivery_id)
            except BrokerUnavailable as exc:
                # Marked as published, so tried again after the requeue delay, not at every sweep.
                log.warning("webhook_sweep_incomplete", published=published, due=len(due), error=str(exc))
                return SweepReport(published, failed, str(exc))
            published += 1
        return SweepReport(published, failed)
