"""When to retry a delivery and when to give up: the retry schedule, its jitter, the claim's lease."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from erp_api.settings import Settings

JITTER: Final = 0.2
"""Each delay is drawn from ±20 % around the schedule, so receivers coming back after an outage
are not hit by every retry at the same second."""
LEASE_MARGIN_SECONDS: Final = 60.0
"""How long past its timeout an attempt stays claimed: a worker still finishing it (database
writes, a slow close) keeps it; one that died gives it up."""


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float
    retry_delays_seconds: tuple[float, ...]
    """The delay after the first failed attempt, the second, ...; one attempt more than delays."""
    sweep_interval_seconds: float
    requeue_after_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            retry_delays_seconds=tuple(settings.webhook_retry_delays_seconds),
            sweep_interval_seconds=settings.webhook_sweep_interval_seconds,
            requeue_after_seconds=settings.webhook_requeue_after_seconds,
        )

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_seconds) + 1

    @property
    def lease_seconds(self) -> float:
        return self.timeout_seconds + LEASE_MARGIN_SECONDS

    def retry_delay(
        self, attempts: int, uniform: Callable[[float, float], float] = random.uniform
    ) -> float | None:
        """Seconds to wait after ``attempts`` (≥ 1) failed attempts, jittered; None when none is left."""
        if attempts >= self.max_attempts:
            return None
        return self.retry_delays_seconds[attempts - 1] * uniform(1 - JITTER, 1 + JITTER)

    def scheduled_by_broker(self, delay: float) -> bool:
        """Whether a retry ``delay`` away is published now with a countdown (True) or left to the
        sweeper: only a retry due before the next sweep needs the broker's timer, and long
        countdowns sit in a worker's memory (and past Redis's visibility timeout)."""
        return delay <= self.sweep_interval_seconds
