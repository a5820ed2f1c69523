"""Job status for operators: each background job's run summary and the broker's queue lengths."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.audit import trail as audit
from erp_api.errors import NotFound, ServiceUnavailable
from erp_api.jobs.dispatch import BrokerUnavailable, JobSpec, TaskClient
from erp_api.jobs.models import JobRun
from erp_api.jobs.runs import JobRunRepository
from erp_api.observability.metrics import set_queue_length


class JobStatusService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tasks: TaskClient) -> None:
        self._sessions = sessions
        self._tasks = tasks

    async def status(self) -> dict[str, Any]:
        """Every job (run or not) with its summary, and the queue lengths (sampled into the metrics)."""
        specs = self._tasks.jobs()
        async with self._sessions() as session:
            rows = await JobRunRepository(session).all([spec.name for spec in specs])
        queues: dict[str, int | None] = dict.fromkeys(self._tasks.queues())
        broker_error = None
        try:
            queues.update(await self._tasks.queue_lengths())
        except BrokerUnavailable as exc:
            broker_error = str(exc)
        for queue, length in queues.items():
            if length is not None:
                set_queue_length(queue, length)
        return {
            "jobs": [job_dict(spec, rows.get(spec.name)) for spec in specs],
            "queues": queues,
            "broker_error": broker_error,
        }

    async def run(self, name: str) -> dict[str, Any]:
        """Start one run of the periodic job ``name`` now (on its usual queue)."""
        spec = next((spec for spec in self._tasks.jobs() if spec.name == name and spec.periodic), None)
        if spec is None:
            raise NotFound(f"no periodic job is called {name!r}")
        try:
            task_id = await self._tasks.run_job(name)
        except BrokerUnavailable as exc:
            raise ServiceUnavailable(f"the job could not be queued: {exc}; retry later") from None
        async with self._sessions.begin() as session:
            await audit.record(
                session,
                entity="job",
                entity_id=name,
                action="run",
                after={"task_id": task_id, "queue": spec.queue},
            )
        return {"name": name, "task_id": task_id, "queue": spec.queue}


def job_dict(spec: JobSpec, row: JobRun | None) -> dict[str, Any]:
    runs = row.runs if row else 0
    return {
        "name": spec.name,
        "queue": spec.queue,
        "interval_seconds": spec.interval_seconds,
        "last_run": row.last_started_at if row else None,
        "last_finished": row.last_finished_at if row else None,
        "last_status": row.last_status if row else None,
        "last_duration_seconds": row.last_duration_seconds if row else None,
        "last_error": row.last_error if row else None,
        "runs": runs,
        "successes": row.successes if row else 0,
        "failures": row.failures if row else 0,
        "retries": row.retries if row else 0,
        "success_rate": round(row.successes / runs, 4) if row and runs else None,
        "average_duration_seconds": row.total_duration_seconds / runs if row and runs else None,
        "max_duration_seconds": row.max_duration_seconds if row and runs else None,
    }
