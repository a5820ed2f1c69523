"""Maintenance jobs on the ``maintenance`` queue: the reaper and retention cleanup."""

from __future__ import annotations

from typing import Any

from celery import Celery

from erp_api.jobs.names import REAP_TASK, RETENTION_TASK
from erp_api.jobs.schedule import REAP_JOB, RETENTION_JOB
from erp_api.settings import Settings
from tasks.instrumentation import job_execution
from tasks.runtime import runtime_for


def reap_analyses(task: Any) -> dict[str, Any]:
    """Requeue (or fail) analyses stuck in running, republish queued ones nobody picked up."""
    with job_execution(task, REAP_JOB):
        runtime = runtime_for(task.app)
        return runtime.run(runtime.reaper.reap()).as_dict()


def retention_cleanup(task: Any) -> dict[str, Any]:
    """Delete measurements and finished analyses older than ERP_RETENTION_MAX_AGE_DAYS, if enabled."""
    settings: Settings = task.app.erp_settings
    with job_execution(task, RETENTION_JOB):
        if not settings.retention_enabled:
            return {"skipped": "retention is off (ERP_RETENTION_ENABLED)"}
        runtime = runtime_for(task.app)
        return runtime.run(runtime.retention.run()).as_dict()


def register(app: Celery) -> None:
    app.task(name=REAP_TASK, bind=True)(reap_analyses)
    app.task(name=RETENTION_TASK, bind=True)(retention_cleanup)
