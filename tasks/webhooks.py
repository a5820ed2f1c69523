"""Webhook jobs on the ``webhooks`` queue: one delivery attempt by id, and the periodic sweeper.

The delivery task takes only the delivery id and re-reads the row; the deliverer's conditional
claim makes it idempotent, so duplicate and redelivered messages are harmless. It never retries
through Celery: the deliverer schedules the next attempt itself, and the sweeper publishes any
task that was lost (including this one, if the database failed while it ran).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from erp_api.jobs.dispatch import WEBHOOK_DELIVERY_JOB
from erp_api.jobs.names import WEBHOOK_DELIVER_TASK, WEBHOOK_SWEEP_TASK
from erp_api.jobs.schedule import WEBHOOK_SWEEP_JOB
from tasks.instrumentation import job_execution
from tasks.runtime import runtime_for


def deliver_webhook(task: Any, delivery_id: int) -> dict[str, Any]:
    with job_execution(task, WEBHOOK_DELIVERY_JOB):
        runtime = runtime_for(task.app)
        return runtime.run(runtime.webhooks.deliver(delivery_id)).as_dict()


def sweep_webhooks(task: Any) -> dict[str, Any]:
    """Publish the due deliveries nobody published; fail those whose last attempt was abandoned."""
    with job_execution(task, WEBHOOK_SWEEP_JOB):
        runtime = runtime_for(task.app)
        return runtime.run(runtime.webhook_sweeper.sweep()).as_dict()


def register(app: Celery) -> None:
    app.task(name=WEBHOOK_DELIVER_TASK, bind=True)(deliver_webhook)
    app.task(name=WEBHOOK_SWEEP_TASK, bind=True)(sweep_webhooks)
