"""The analysis task: run one anomaly analysis by id, retrying transient failures with backoff.

The task takes only the analysis id and re-reads everything else; the runner's conditional claims
make it idempotent, so redelivery after a lost worker and duplicate messages are harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

from erp_api.analyses.runner import Outcome
from erp_api.jobs.dispatch import ANALYSIS_JOB
from erp_api.jobs.failures import describe_failure, is_transient
from erp_api.jobs.names import ANALYSIS_TASK
from erp_api.settings import Settings
from tasks.instrumentation import backoff_seconds, job_execution, log
from tasks.runtime import discard_runtime, runtime_for


def run_analysis(task: Any, analysis_id: int) -> dict[str, Any]:
    settings: Settings = task.app.erp_settings
    token = str(task.request.id)
    with job_execution(task, ANALYSIS_JOB) as execution:
        try:
            runtime = runtime_for(task.app)
            report = runtime.run(runtime.analyses.run(analysis_id, token))
        except SoftTimeLimitExceeded:
            # Raised by a signal wherever the loop was: the loop may be broken, start afresh.
            discard_runtime(task.app)
            error = "the analysis exceeded its time limit"
            _give_up(task, analysis_id, token, error)
            execution.fail(error)
            return {"analysis_id": analysis_id, "outcome": Outcome.FAILED.value}
        except Exception as exc:
            if not is_transient(exc):
                raise
            retries = int(task.request.retries)
            if retries < settings.analysis_max_retries:
                execution.error = describe_failure(exc)
                countdown = backoff_seconds(
                    retries,
                    settings.analysis_retry_backoff_seconds,
                    settings.analysis_retry_backoff_max_seconds,
                )
                log.warning(
                    "analysis_retry", analysis_id=analysis_id, countdown=countdown, error=execution.error
                )
                raise task.retry(
                    exc=exc, countdown=countdown, max_retries=settings.analysis_max_retries
                ) from None
            error = f"gave up after {retries} retries: {describe_failure(exc)}"
            _give_up(task, analysis_id, token, error)
            execution.fail(error)
            return {"analysis_id": analysis_id, "outcome": Outcome.FAILED.value}
        if report.outcome == Outcome.FAILED:
            execution.fail(report.error)
        return {"analysis_id": analysis_id, "outcome": report.outcome.value, "attempts": report.attempts}


def _give_up(task: Any, analysis_id: int, token: str, error: str) -> None:
    try:
        runtime = runtime_for(task.app)
        runtime.run(runtime.analyses.give_up(analysis_id, token, error))
    except Exception as exc:
        # Still unreachable: the reaper fails or requeues the analysis once the database is back.
        log.warning("analysis_give_up_not_recorded", analysis_id=analysis_id, error=describe_failure(exc))


def register(app: Celery) -> None:
    app.task(name=ANALYSIS_TASK, bind=True)(run_analysis)
