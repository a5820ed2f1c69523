"""What every task execution gets: its request id bound in the logs, metrics, and a job-run record.

``job_execution`` wraps a task body. The request id the API put into the message headers becomes
the current request id (so every log line of the task carries it); the run's duration and outcome
go to the metrics and, best effort, to the job's summary row (``GET /api/v1/jobs/status``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import structlog
from celery.exceptions import Retry

from erp_api.db import utcnow
from erp_api.jobs.failures import describe_failure
from erp_api.jobs.runs import FinishedRun, RunStatus, record_run
from erp_api.observability.metrics import observe_task_queue_wait, observe_task_run
from erp_api.observability.request_id import bind_request_id, reset_request_id
from tasks.runtime import runtime_for

log = structlog.get_logger("tasks")

_METRIC_OUTCOME = {RunStatus.SUCCEEDED: "success", RunStatus.FAILED: "failure", RunStatus.RETRYING: "retry"}


@dataclass
class Execution:
    """Lets a task body say how its run ended when that is not an exception (e.g. analysis failed)."""

    error: str | None = None
    failed: bool = False

    def fail(self, error: str | None) -> None:
        self.failed = True
        self.error = error


def request_id_of(task: Any) -> str | None:
    request = task.request
    value = getattr(request, "request_id", None) or (request.headers or {}).get("request_id")
    return str(value) if value else None


@contextmanager
def job_execution(task: Any, job: str) -> Iterator[Execution]:
    """Run a task body as one execution of ``job``; see the module docstring."""
    request = task.request
    token = bind_request_id(request_id_of(task))
    published_at = getattr(request, "published_at", None) or (request.headers or {}).get("published_at")
    if isinstance(published_at, int | float) and not request.retries:
        observe_task_queue_wait(job, time.time() - published_at)
    execution = Execution()
    started_at = utcnow()
    started = perf_counter()
    status = RunStatus.SUCCEEDED
    with structlog.contextvars.bound_contextvars(job=job, task_id=request.id, retries=request.retries):
        try:
            yield execution
        except Retry:
            status = RunStatus.RETRYING
            raise
        except BaseException as exc:
            status = RunStatus.FAILED
            execution.error = describe_failure(exc)
            log.error("task_failed", exc_info=exc)
            raise
        finally:
            if execution.failed:
                status = RunStatus.FAILED
            duration = perf_counter() - started
            observe_task_run(job, _METRIC_OUTCOME[status], duration)
            _record(task, FinishedRun(job, status, started_at, utcnow(), duration, execution.error))
            log.info("task_finished", status=status.value, duration_seconds=round(duration, 6))
            reset_request_id(token)


def _record(task: Any, run: FinishedRun) -> None:
    # Bookkeeping must never turn a run into a failure (the database may be the thing that is down).
    try:
        runtime = runtime_for(task.app)
        runtime.resources.cache_counters.record()  # the run's cache reads, into the metrics
        runtime.run(record_run(runtime.sessions, run))
    except Exception as exc:
        log.warning("job_run_not_recorded", error=describe_failure(exc))


def backoff_seconds(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2**retries)."""
    delay = min(cap, base * float(2**retries))
    return delay / 2 + random.uniform(0, delay / 2)
