"""The retry schedule: jittered delays from the settings, one attempt more than delays."""

from __future__ import annotations

from erp_api.settings import load_settings
from erp_api.webhooks.policy import JITTER, DeliveryPolicy


def test_the_default_schedule_makes_eight_attempts_over_about_seventeen_hours() -> None:
    policy = DeliveryPolicy.from_settings(load_settings())
    assert policy.max_attempts == 8
    assert policy.retry_delays_seconds == (5.0, 30.0, 120.0, 600.0, 3600.0, 14_400.0, 43_200.0)
    assert policy.timeout_seconds == 5.0
    assert [policy.retry_delay(attempts, lambda low, high: 1.0) for attempts in range(1, 9)] == [
        5.0,
        30.0,
        120.0,
        600.0,
        3600.0,
        14_400.0,
        43_200.0,
        None,
    ]


def test_delays_are_jittered_within_a_fifth_either_way() -> None:
    policy = DeliveryPolicy.from_settings(load_settings(webhook_retry_delays_seconds=[100.0]))
    assert policy.retry_delay(1, lambda low, high: low) == 100.0 * (1 - JITTER)
    assert policy.retry_delay(1, lambda low, high: high) == 100.0 * (1 + JITTER)
    drawn = {policy.retry_delay(1) for _ in range(50)}
    assert len(drawn) > 1
    assert all(delay is not None and 80.0 <= delay <= 120.0 for delay in drawn)


def test_only_retries_due_before_the_next_sweep_are_left_to_the_broker() -> None:
    policy = DeliveryPolicy.from_settings(load_settings(webhook_sweep_interval_seconds=30))
    assert policy.scheduled_by_broker(5.0)
    assert policy.scheduled_by_broker(30.0)
    assert not policy.scheduled_by_broker(120.0)


def test_an_attempt_stays_claimed_for_its_timeout_and_a_margin() -> None:
    policy = DeliveryPolicy.from_settings(load_settings(webhook_timeout_seconds=2))
    assert policy.lease_seconds > policy.timeout_seconds
