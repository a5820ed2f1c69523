"""Aggregation jobs on the ``aggregations`` queue: warming the quality summary cache."""

from __future__ import annotations

from typing import Any

from celery import Celery

from erp_api.jobs.names import WARM_TASK
from erp_api.jobs.schedule import WARM_JOB
from tasks.instrumentation import job_execution
from tasks.runtime import runtime_for


def warm_quality_summaries(task: Any) -> dict[str, Any]:
    with job_execution(task, WARM_JOB):
        runtime = runtime_for(task.app)
        return runtime.run(runtime.warmer.warm()).as_dict()


def register(app: Celery) -> None:
    app.task(name=WARM_TASK, bind=True)(warm_quality_summaries)
