"""The periodic jobs and when beat starts them: the one place the schedule lives.

Intervals come from the settings (``ERP_REAPER_INTERVAL_SECONDS``, ``ERP_CACHE_WARM_INTERVAL_SECONDS``,
``ERP_RETENTION_INTERVAL_SECONDS``, ``ERP_WEBHOOK_SWEEP_INTERVAL_SECONDS``); a job with no interval is not scheduled but can still be run by
hand (``POST /api/v1/jobs/{name}/run``). Retention is scheduled only with ``ERP_RETENTION_ENABLED``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from erp_api.jobs.dispatch import JobSpec
from erp_api.jobs.names import (
    AGGREGATIONS,
    MAINTENANCE,
    REAP_TASK,
    RETENTION_TASK,
    WARM_TASK,
    WEBHOOK_SWEEP_TASK,
    WEBHOOKS,
)
from erp_api.settings import Settings

REAP_JOB = "reap_analyses"
WARM_JOB = "warm_quality_summaries"
RETENTION_JOB = "retention_cleanup"
WEBHOOK_SWEEP_JOB = "sweep_webhooks"


def periodic_jobs(settings: Settings) -> tuple[JobSpec, ...]:
    return (
        JobSpec(REAP_JOB, REAP_TASK, MAINTENANCE, settings.reaper_interval_seconds),
        JobSpec(WARM_JOB, WARM_TASK, AGGREGATIONS, settings.cache_warm_interval_seconds or None),
        JobSpec(
            RETENTION_JOB,
            RETENTION_TASK,
            MAINTENANCE,
            settings.retention_interval_seconds if settings.retention_enabled else None,
        ),
        JobSpec(WEBHOOK_SWEEP_JOB, WEBHOOK_SWEEP_TASK, WEBHOOKS, settings.webhook_sweep_interval_seconds),
    )


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule``: each scheduled job on its queue, expiring after one interval.

    The expiry keeps a backlog from piling up while no worker runs: a run that waited a whole
    interval is dropped, because the next one is already on its way.
    """
    schedule: dict[str, dict[str, Any]] = {}
    for job in periodic_jobs(settings):
        if job.interval_seconds is None:
            continue
        schedule[job.name] = {
            "task": job.task,
            "schedule": timedelta(seconds=job.interval_seconds),
            "options": {"queue": job.queue, "expires": job.interval_seconds},
        }
    return schedule
