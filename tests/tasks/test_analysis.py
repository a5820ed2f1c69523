"""The analysis task as a worker runs it (executed in-process): outcome, retries, job records, logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from celery import Celery
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.runner import AnalysisRunner, BaselineMap, RunnerLimits
from erp_api.jobs.models import JobRun
from erp_api.jobs.names import ANALYSIS_TASK, REAP_TASK, RETENTION_TASK
from erp_api.jobs.runs import JobRunRepository
from erp_api.observability.request_id import current_request_id
from tasks.instrumentation import backoff_seconds
from tasks.runtime import WorkerRuntime, runtime_for

Analyzer = Callable[[int, str, BaselineMap | None], Any]


def use_analyzer(app: Celery, analyze: Analyzer) -> WorkerRuntime:
    runtime = runtime_for(app)
    limits = RunnerLimits(time_limit_seconds=5, stale_after_seconds=600, max_attempts=5)
    runtime.analyses = AnalysisRunner(runtime.sessions, analyze, limits)
    return runtime


def stored(app: Celery, analysis_id: int) -> AnomalyAnalysis:
    runtime = runtime_for(app)

    async def load() -> AnomalyAnalysis | None:
        async with runtime.sessions() as session:
            return await AnalysisRepository(session).get(analysis_id)

    row = runtime.run(load())
    assert row is not None
    return row


def job_run(app: Celery, name: str) -> JobRun:
    runtime = runtime_for(app)

    async def load() -> dict[str, JobRun]:
        async with runtime.sessions() as session:
            return await JobRunRepository(session).all([name])

    return runtime.run(load())[name]


def test_the_task_runs_the_analysis_with_the_quality_service_and_records_the_run(
    celery_app: Celery, analysis_id: int
) -> None:
    outcome = celery_app.tasks[ANALYSIS_TASK].apply(args=[analysis_id]).get()
    row = stored(celery_app, analysis_id)
    assert outcome == {"analysis_id": analysis_id, "outcome": "succeeded", "attempts": 1}
    assert row.status == "succeeded"
    assert row.result is not None and '"anomaly_count":0' in row.result
    run = job_run(celery_app, "run_analysis")
    assert (run.runs, run.successes, run.last_status) == (1, 1, "succeeded")


def test_the_request_id_in_the_message_headers_is_current_while_the_task_runs(
    celery_app: Celery, analysis_id: int
) -> None:
    seen: list[str | None] = []

    async def analyze(charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        seen.append(current_request_id())
        return {"parameters": [], "anomaly_count": 0}

    use_analyzer(celery_app, analyze)
    celery_app.tasks[ANALYSIS_TASK].apply(args=[analysis_id], headers={"request_id": "req-from-api-01"})
    assert seen == ["req-from-api-01"]
    assert current_request_id() is None  # reset after the task


def test_transient_failures_are_retried_until_the_analysis_succeeds(
    celery_app: Celery, analysis_id: int
) -> None:
    failures = 2

    async def flaky(charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        nonlocal failures
        if failures:
            failures -= 1
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))
        return {"parameters": [], "anomaly_count": 0}

    use_analyzer(celery_app, flaky)
    celery_app.tasks[ANALYSIS_TASK].apply(args=[analysis_id])
    row = stored(celery_app, analysis_id)
    assert (row.status, row.attempts) == ("succeeded", 3)
    run = job_run(celery_app, "run_analysis")
    assert (run.retries, run.successes, run.failures) == (2, 1, 0)


def test_after_the_last_retry_the_analysis_is_failed_with_the_reason(
    celery_app: Celery, analysis_id: int
) -> None:
    async def down(charge_id: int, rules: str, baseline: BaselineMap | None) -> Mapping[str, Any]:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("database is down"))

    use_analyzer(celery_app, down)
    outcome = celery_app.tasks[ANALYSIS_TASK].apply(args=[analysis_id]).get()
    row = stored(celery_app, analysis_id)
    assert outcome["outcome"] == "failed"
    assert row.status == "failed"
    assert row.attempts == 4  # the first run and 3 retries
    assert row.error == "gave up after 3 retries: database error (OperationalError); see the worker log"
    run = job_run(celery_app, "run_analysis")
    assert (run.retries, run.failures, run.last_status) == (3, 1, "failed")


@pytest.mark.parametrize("retries", [0, 1, 2, 3, 8])
def test_retry_backoff_is_exponential_with_jitter_and_capped(retries: int) -> None:
    delays = [backoff_seconds(retries, base=1.0, cap=10.0) for _ in range(200)]
    full = min(10.0, 2.0**retries)
    assert all(full / 2 <= delay <= full for delay in delays)
    assert max(delays) - min(delays) > full / 10  # jittered, not all the same


def test_one_loop_and_engine_serve_every_task_of_a_process(celery_app: Celery, analysis_id: int) -> None:
    runtime = runtime_for(celery_app)
    celery_app.tasks[ANALYSIS_TASK].apply(args=[analysis_id])
    celery_app.tasks[REAP_TASK].apply()
    assert runtime_for(celery_app) is runtime
    runtime.pid = -1  # as seen from a forked child: the parent's runtime is not reused
    assert runtime_for(celery_app) is not runtime
    runtime.close()


def test_maintenance_tasks_run_and_are_recorded(celery_app: Celery) -> None:
    reaped = celery_app.tasks[REAP_TASK].apply().get()
    retention = celery_app.tasks[RETENTION_TASK].apply().get()
    assert reaped == {"requeued": 0, "failed": 0, "republished": 0, "redelivered": 0, "unpublished": 0}
    assert retention == {"skipped": "retention is off (ERP_RETENTION_ENABLED)"}
    assert job_run(celery_app, "reap_analyses").successes == 1
    assert job_run(celery_app, "retention_cleanup").runs == 1


def test_a_tasks_cache_reads_reach_the_metrics_when_it_ends(celery_app: Celery) -> None:
    """A pool process has no request ledger: its cache counters are copied after every task."""
    runtime = runtime_for(celery_app)

    async def loaded() -> int:
        return 7

    def misses() -> float:
        return (
            REGISTRY.get_sample_value("cache_requests_total", {"namespace": "task_read", "result": "miss"})
            or 0.0
        )

    before = misses()
    assert runtime.run(runtime.cache.get_or_load("task_read", key=1, loader=loaded)) == 7
    celery_app.tasks[REAP_TASK].apply().get()
    assert misses() - before == 1
