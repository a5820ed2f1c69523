"""``charge.status_changed`` webhooks: the charge service's ``StatusChangeNotifier``, as webhooks.

Staged with ``outbox.publish`` in the transaction of the status change, dispatched after its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from erp_api.jobs.dispatch import TaskClient
from erp_api.webhooks.events import EventType
from erp_api.webhooks.outbox import dispatch, publish

if TYPE_CHECKING:
    from erp_api.charges.notifications import StatusChanged


class ChargeStatusWebhooks:
    def __init__(self, tasks: TaskClient) -> None:
        self._tasks = tasks

    async def stage(self, session: AsyncSession, change: StatusChanged) -> list[int]:
        return await publish(session, EventType.CHARGE_STATUS_CHANGED, change.payload())

    async def send(self, staged: Sequence[int]) -> None:
        await dispatch(self._tasks, staged)
