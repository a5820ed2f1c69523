"""A task client for tests: records what it was asked to publish, and can fail like a dead broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from erp_api.jobs.dispatch import BrokerUnavailable, JobSpec


class RecordingTaskClient:
    """A task client that remembers what it was asked to publish; ``down`` makes it fail like a dead broker."""

    def __init__(self) -> None:
        self.published: list[int] = []
        # (delivery id, countdown) of every webhook delivery task, in order.
        self.webhook_deliveries: list[tuple[int, float]] = []
        self.down = False
        # Messages waiting in the analyses' queue; None: every analysis published so far.
        self.in_queue: int | None = None

    def jobs(self) -> Sequence[JobSpec]:
        return (
            JobSpec("run_analysis", "erp.analysis.run", "high_priority", None, periodic=False),
            JobSpec("reap_analyses", "erp.maintenance.reap_analyses", "maintenance", 60.0),
        )

    def queues(self) -> Sequence[str]:
        return ("high_priority", "maintenance")

    async def enqueue_analysis(self, analysis_id: int) -> None:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        self.published.append(analysis_id)

    async def enqueue_webhook_delivery(self, delivery_id: int, countdown: float = 0.0) -> None:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        self.webhook_deliveries.append((delivery_id, countdown))

    async def run_job(self, name: str) -> str:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        return f"task-{name}"

    async def queue_lengths(self) -> Mapping[str, int]:
        if self.down:
            raise BrokerUnavailable("the broker is unavailable (test)")
        waiting = len(self.published) if self.in_queue is None else self.in_queue
        return {"high_priority": waiting, "maintenance": 0}

    async def close(self) -> None:
        return None
