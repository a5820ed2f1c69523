"""The task client: publishes tasks for the API (and for jobs that start other jobs) through Celery.

kombu's publishing is blocking I/O, so it runs on a small thread pool of the client's own, under a
timeout: a down broker costs a request about a second, never a blocked event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from celery import Celery
from kombu.exceptions import ChannelError, KombuError
from kombu.exceptions import OperationalError as KombuOperationalError

from erp_api.jobs.celery_config import celery_app
from erp_api.jobs.dispatch import ANALYSIS_JOB, WEBHOOK_DELIVERY_JOB, BrokerUnavailable, JobSpec
from erp_api.jobs.names import ANALYSIS_TASK, HIGH_PRIORITY, QUEUES, WEBHOOK_DELIVER_TASK, WEBHOOKS
from erp_api.jobs.schedule import periodic_jobs
from erp_api.observability.request_id import current_request_id
from erp_api.settings import Settings

T = TypeVar("T")
PUBLISH_THREADS = 4
_BROKER_ERRORS = (KombuOperationalError, KombuError, ConnectionError, OSError, TimeoutError)


class CeleryTaskClient:
    """``erp_api.jobs.dispatch.TaskClient`` on a Celery app."""

    def __init__(self, app: Celery, settings: Settings, *, owns_app: bool = False) -> None:
        self._app = app
        self._owns_app = owns_app
        self._jobs = (
            JobSpec(ANALYSIS_JOB, ANALYSIS_TASK, HIGH_PRIORITY, None, periodic=False),
            JobSpec(WEBHOOK_DELIVERY_JOB, WEBHOOK_DELIVER_TASK, WEBHOOKS, None, periodic=False),
            *periodic_jobs(settings),
        )
        # Long enough for kombu's own connect timeout and publish retries, then give up.
        self._timeout = settings.broker_connect_timeout_seconds + 2.0
        self._executor = ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="erp-publish")

    def jobs(self) -> Sequence[JobSpec]:
        return self._jobs

    def queues(self) -> Sequence[str]:
        return QUEUES

    async def enqueue_analysis(self, analysis_id: int) -> None:
        await self._in_thread(self._publish, ANALYSIS_TASK, [analysis_id], HIGH_PRIORITY, _headers())

    async def enqueue_webhook_delivery(self, delivery_id: int, countdown: float = 0.0) -> None:
        await self._in_thread(
            self._publish, WEBHOOK_DELIVER_TASK, [delivery_id], WEBHOOKS, _headers(), countdown or None
        )

    async def run_job(self, name: str) -> str:
        spec = next((job for job in self._jobs if job.name == name and job.periodic), None)
        if spec is None:
            raise KeyError(name)
        return await self._in_thread(self._publish, spec.task, [], spec.queue, _headers())

    async def queue_lengths(self) -> Mapping[str, int]:
        return await self._in_thread(self._queue_lengths)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_app:
            self._app.close()  # its broker connections

    def _publish(
        self, task: str, args: list[Any], queue: str, headers: dict[str, Any], countdown: float | None = None
    ) -> str:
        result = self._app.send_task(task, args=args, queue=queue, headers=headers, countdown=countdown)
        return str(result.id)

    def _queue_lengths(self) -> dict[str, int]:
        return broker_queue_lengths(self._app, self._timeout)

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                return await loop.run_in_executor(self._executor, function, *args)
        except TimeoutError:
            raise BrokerUnavailable(f"the broker did not answer within {self._timeout:g} s") from None
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"the broker is unavailable ({type(exc).__name__})") from exc


def broker_queue_lengths(app: Celery, timeout: float) -> dict[str, int]:
    """Messages waiting per queue: LLEN of the queue's lists on Redis, visible rows on SQLite.

    Blocking; asks the broker with a passive declare, which every kombu transport answers.
    """
    lengths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        channel = connection.default_channel
        for queue in QUEUES:
            try:
                lengths[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:
                lengths[queue] = 0  # never declared: nothing was ever published to it
    return lengths


def _headers() -> dict[str, Any]:
    """Travels with the message: the request that caused it (for the logs) and when it was sent."""
    return {"request_id": current_request_id(), "published_at": time.time()}


def build_task_client(settings: Settings) -> CeleryTaskClient:
    """The API's task client, on a Celery app of its own (used only to publish)."""
    return CeleryTaskClient(celery_app(settings), settings, owns_app=True)
