"""How the service layer hands work to background workers, without knowing Celery.

The API's lifespan and each worker process build a ``TaskClient`` (``erp_api/jobs/client.py``); the
services take it as a parameter, so they can be tested with a client that records what it was asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class BrokerUnavailable(Exception):
    """The broker did not answer in time (down, or too slow); the caller decides what that means."""


@dataclass(frozen=True)
class JobSpec:
    """A background job operators can see; ``interval_seconds`` None: not scheduled.

    Periodic jobs can also be started by hand; the others (analysis runs) need arguments.
    """

    name: str
    task: str
    queue: str
    interval_seconds: float | None
    periodic: bool = True


ANALYSIS_JOB = "run_analysis"
"""The job name under which analysis runs are summarized (it cannot be started by hand)."""
WEBHOOK_DELIVERY_JOB = "deliver_webhook"
"""The job name under which webhook delivery attempts are summarized (not started by hand either)."""


class TaskClient(Protocol):
    def jobs(self) -> Sequence[JobSpec]:
        """Every background job: the analysis runs, then the periodic jobs of the schedule."""
        ...

    def queues(self) -> Sequence[str]: ...

    async def enqueue_analysis(self, analysis_id: int) -> None:
        """Publish a run of the analysis; raises BrokerUnavailable if the broker does not take it."""
        ...

    async def enqueue_webhook_delivery(self, delivery_id: int, countdown: float = 0.0) -> None:
        """Publish an attempt of the delivery, to run no sooner than ``countdown`` seconds from now;
        raises BrokerUnavailable if the broker does not take it."""
        ...

    async def run_job(self, name: str) -> str:
        """Publish one run of the periodic job ``name`` now; returns the task id. KeyError if unknown."""
        ...

    async def queue_lengths(self) -> Mapping[str, int]:
        """Messages waiting per queue; raises BrokerUnavailable if the broker cannot be asked."""
        ...

    async def close(self) -> None: ...
