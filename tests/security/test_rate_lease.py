"""Rate-limit leases: the accounting that answers most requests locally within the stated bound."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from erp_api.security.rate_lease import LEASE_SECONDS, LeasedLimiter, lease_size
from erp_api.security.ratelimit import Grant, MemoryLimiter, RateLimiter
from tests.security.fixtures import Clock

LIMIT = 1000  # a lease of 10
RETRY_AFTER = 7.0


class Quota:
    """Stands in for ``RedisLimiter.take``: one caller's places left (no refill), and every call made."""

    def __init__(self, places: int = LIMIT) -> None:
        self.left = places
        self.calls: list[tuple[int, int]] = []
        self.granted = 0
        self.given_back = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.failure: Exception | None = None

    async def take(self, bucket: str, limit: int, wanted: int = 1, given_back: int = 0) -> Grant:
        self.calls.append((wanted, given_back))
        await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        self.left += given_back
        granted = min(wanted, self.left)
        self.left -= granted
        self.granted += granted
        self.given_back += given_back
        return Grant(granted, self.left, 60.0, 0.0 if granted else RETRY_AFTER)


async def settle() -> None:
    """Let the tasks just created run, and the calls they start begin (two turns of the loop)."""
    for _ in range(2):
        await asyncio.sleep(0)


def leased(quota: Quota, clock: Clock, max_buckets: int = 100) -> LeasedLimiter:
    return LeasedLimiter(quota, max_lease_tokens=100, max_buckets=max_buckets, clock=clock)  # type: ignore[arg-type]


def test_a_lease_is_one_percent_of_the_limit_at_least_one_at_most_the_setting() -> None:
    assert [lease_size(limit, 100) for limit in (1, 199, 200, 1_000, 12_000, 1_000_000)] == [
        1,
        1,
        2,
        10,
        100,
        100,
    ]
    assert lease_size(1_000_000, 1) == 1


async def test_a_lease_answers_its_requests_without_a_call_and_the_headers_count_down() -> None:
    quota = Quota()
    limiter = leased(quota, Clock())
    decisions = [await limiter.hit("key:1", LIMIT) for _ in range(25)]
    assert all(decision.allowed for decision in decisions)
    assert quota.calls == [(10, 0)] * 3, "25 requests, three leases of 10"
    assert [decision.remaining for decision in decisions] == list(range(LIMIT - 1, LIMIT - 26, -1))
    assert all(decision.reset_seconds > 0 for decision in decisions)


async def test_below_a_limit_of_200_every_request_is_one_call_as_without_leases() -> None:
    quota = Quota(places=3)
    limiter = leased(quota, Clock())
    decisions = [await limiter.hit("key:1", 150) for _ in range(4)]
    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert [decision.remaining for decision in decisions] == [2, 1, 0, 0]
    assert quota.calls == [(1, 0)] * 4


async def test_an_expired_lease_gives_its_unused_places_back_with_the_next_call() -> None:
    clock = Clock()
    quota = Quota()
    limiter = leased(quota, clock)
    for _ in range(3):
        await limiter.hit("key:1", LIMIT)
    clock.now += LEASE_SECONDS
    assert (await limiter.hit("key:1", LIMIT)).allowed
    assert quota.calls == [(10, 0), (10, 7)]
    assert quota.left == LIMIT - 3 - 10, "3 used, 7 given back, a new lease of 10 taken"


async def test_concurrent_requests_of_one_key_share_one_call_at_a_time() -> None:
    quota = Quota()
    quota.gate.clear()
    limiter = leased(quota, Clock())
    requests = [asyncio.create_task(limiter.hit("key:1", LIMIT)) for _ in range(25)]
    await settle()
    assert quota.calls == [(10, 0)], "one call in flight, every request waiting on it"
    quota.gate.set()
    decisions = await asyncio.gather(*requests)
    assert all(decision.allowed for decision in decisions)
    assert len(quota.calls) == 3
    assert sorted(decision.remaining for decision in decisions) == list(range(LIMIT - 25, LIMIT))


async def test_a_refusal_is_remembered_until_its_retry_after() -> None:
    clock = Clock()
    quota = Quota(places=15)
    limiter = leased(quota, clock)
    decisions = [await limiter.hit("key:1", LIMIT) for _ in range(18)]
    assert [decision.allowed for decision in decisions] == [True] * 15 + [False] * 3
    assert [wanted for wanted, _back in quota.calls] == [10, 10, 10], "the refused ones asked once"
    assert decisions[-1].retry_after_seconds == pytest.approx(RETRY_AFTER)
    assert all(
        ("retry-after", "7") in [(k.decode(), v.decode()) for k, v in d.headers()] for d in decisions[15:]
    )
    clock.now += RETRY_AFTER - 1
    refused = await limiter.hit("key:1", LIMIT)
    assert not refused.allowed and refused.retry_after_seconds == pytest.approx(1)
    assert len(quota.calls) == 3
    clock.now += 1
    quota.left = 5  # the quota refilled meanwhile
    assert (await limiter.hit("key:1", LIMIT)).allowed
    assert len(quota.calls) == 4


@pytest.mark.parametrize("seed", range(5))
async def test_across_processes_admitted_requests_never_exceed_the_places_granted_plus_one_lease_each(
    seed: int,
) -> None:
    # The two facts the bound in rate_lease.py rests on, under random traffic, lease expiry, and
    # a quota that runs out: every admitted request used a granted place never given back, and
    # each process holds at most one lease (N places) of the key at any moment.
    rng = random.Random(seed)
    clock = Clock()
    quota = Quota(places=3 * LIMIT)
    processes = [leased(quota, clock) for _ in range(3)]
    admitted = 0
    for _ in range(4 * LIMIT):
        if rng.random() < 0.01:
            clock.now += rng.choice([0.1, LEASE_SECONDS])
        if (await rng.choice(processes).hit("key:1", LIMIT)).allowed:
            admitted += 1
        held = quota.granted - quota.given_back - admitted
        assert 0 <= held <= len(processes) * lease_size(LIMIT, 100)
    assert admitted <= 3 * LIMIT
    assert admitted >= 3 * LIMIT - len(processes) * lease_size(LIMIT, 100)


async def test_the_map_of_leases_is_bounded() -> None:
    limiter = leased(Quota(places=10 * LIMIT), Clock(), max_buckets=5)
    for n in range(20):
        await limiter.hit(f"key:{n}", LIMIT)
    assert limiter.leases == 5


async def test_a_failed_call_falls_back_to_memory_for_every_waiter_and_logs_once() -> None:
    quota = Quota()
    quota.gate.clear()
    quota.failure = RedisConnectionError("connection refused")
    limiter = RateLimiter(MemoryLimiter(60, 100), leased(quota, Clock()))
    requests = [asyncio.create_task(limiter.hit("key:1", LIMIT)) for _ in range(10)]
    await settle()
    with capture_logs() as logs:
        quota.gate.set()
        decisions = await asyncio.gather(*requests)
    assert all(decision.allowed for decision in decisions), "never refused because Redis is down"
    assert len(quota.calls) == 1
    assert not limiter.using_redis
    assert [log["event"] for log in logs] == ["rate_limit_redis_unavailable"]


async def test_close_cancels_the_calls_still_running() -> None:
    quota = Quota()
    quota.gate.clear()
    limiter = leased(quota, Clock())
    request = asyncio.create_task(limiter.hit("key:1", LIMIT))
    await settle()
    assert quota.calls
    await limiter.close()
    with pytest.raises(asyncio.CancelledError):
        await request
