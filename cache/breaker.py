"""A circuit breaker: stop calling a backend that keeps failing, then probe it now and then.

``closed``: calls go through; ``failure_threshold`` consecutive failures open the circuit.
``open``: calls are refused without touching the backend, so nobody pays its timeout, until
``reset_timeout`` seconds have passed. Then one caller gets ``try_probe() == True`` (``half_open``):
its success closes the circuit, its failure opens it for another ``reset_timeout``.
``force_probe()`` skips the cool-down, for a probe that must not wait (the repair after a missed
invalidation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive failures and decides when a backend may be called again."""

    __slots__ = (
        "_clock",
        "_opened_at",
        "consecutive_failures",
        "failure_threshold",
        "reset_timeout",
        "state",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold and reset_timeout must be positive")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self.state: State = "closed"
        self.consecutive_failures = 0
        self._opened_at = 0.0

    def try_probe(self) -> bool:
        """True if the caller may test the backend now: it is closed, or open long enough to probe.

        An open circuit turns half-open for the one caller that gets True; others get False until
        that probe reports back through ``record_success``/``record_failure``.
        """
        if self.state == "closed":
            return True
        if self.state == "open" and self._clock() - self._opened_at >= self.reset_timeout:
            self.state = "half_open"
            return True
        return False

    def probe_due_in(self) -> float:
        """Seconds until ``try_probe`` can return True; 0.0 unless the circuit is open."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.reset_timeout - (self._clock() - self._opened_at))

    def force_probe(self) -> None:
        """Turn an open circuit half-open now, cool-down or not; the caller then reports back."""
        if self.state == "open":
            self.state = "half_open"

    def record_success(self) -> None:
        """A call succeeded: forget earlier failures; a successful probe closes the circuit.

        While open, late results of calls started before it opened change nothing.
        """
        if self.state != "open":
            self.state = "closed"
            self.consecutive_failures = 0

    def record_failure(self) -> None:
        """A call failed: open the circuit after too many failures in a row, or if it was the probe.

        While open, further failures do not extend the cool-down.
        """
        self.consecutive_failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.consecutive_failures >= self.failure_threshold
        ):
            self.state = "open"
            self._opened_at = self._clock()
