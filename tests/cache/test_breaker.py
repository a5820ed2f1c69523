"""The circuit breaker's states: closed, open for a cool-down, one half-open probe."""

from __future__ import annotations

import pytest

from cache.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout=5.0, clock=clock)


def test_opens_after_consecutive_failures_only(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    before = breaker.state

    breaker.record_failure()

    assert (before, breaker.state) == ("closed", "open")
    assert breaker.try_probe() is False


def test_allows_one_probe_after_the_cool_down(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()

    clock.now = 4.9
    assert breaker.try_probe() is False
    clock.now = 5.0
    assert breaker.try_probe() is True
    assert breaker.state == "half_open"
    assert breaker.try_probe() is False  # only one probe at a time


def test_successful_probe_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now = 5.0
    breaker.try_probe()

    breaker.record_success()

    assert breaker.state == "closed"
    assert breaker.try_probe() is True
    breaker.record_failure()
    assert breaker.state == "closed"  # the failure count started over


def test_failed_probe_reopens_for_another_cool_down(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now = 5.0
    breaker.try_probe()

    breaker.record_failure()

    assert breaker.state == "open"
    clock.now = 9.9
    assert breaker.try_probe() is False
    clock.now = 10.0
    assert breaker.try_probe() is True


@pytest.mark.parametrize(("threshold", "timeout"), [(0, 1.0), (1, 0.0)])
def test_invalid_settings_are_refused(threshold: int, timeout: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, reset_timeout=timeout)


def test_late_results_do_not_change_an_open_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now = 4.0
    breaker.record_failure()  # e.g. a call that started before the circuit opened
    breaker.record_success()

    assert breaker.state == "open"
    clock.now = 5.0
    assert breaker.try_probe() is True  # the cool-down still ends 5 s after opening
