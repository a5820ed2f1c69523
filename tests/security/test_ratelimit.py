"""Rate limits: GCRA per key (or per address without one), in memory or Redis, with the RateLimit headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from erp_api.security.ratelimit import Decision, MemoryLimiter, RateLimiter, RedisLimiter, redis_client
from testing.processes import free_port
from tests import services
from tests.charges.helpers import assert_problem
from tests.security.fixtures import Clock, Serve, http, new_key


def test_memory_limiter_allows_the_limit_then_refuses_until_one_interval_has_passed() -> None:
    clock = Clock()
    limiter = MemoryLimiter(window_seconds=60, max_buckets=100, clock=clock)
    decisions = [limiter.hit("key:1", 3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after_seconds == pytest.approx(20)
    assert decisions[2].reset_seconds == pytest.approx(60)
    assert limiter.hit("key:2", 3).allowed, "callers do not share a limit"
    clock.now += 20
    assert limiter.hit("key:1", 3).allowed
    assert not limiter.hit("key:1", 3).allowed


def test_memory_limiter_keeps_at_most_max_buckets() -> None:
    limiter = MemoryLimiter(window_seconds=60, max_buckets=2, clock=Clock())
    for bucket in ("a", "b", "c"):
        limiter.hit(bucket, 1)
    assert limiter.hit("a", 1).allowed, "the least recently seen caller was forgotten"
    assert not limiter.hit("c", 1).allowed


def test_decision_headers_state_limit_remaining_within_it_whole_seconds_to_reset_and_retry() -> None:
    def rendered(decision: Decision) -> list[tuple[str, str]]:
        return [(name.decode(), value.decode()) for name, value in decision.headers()]

    assert rendered(Decision(True, 100, 99, 0.2)) == [
        ("ratelimit-limit", "100"),
        ("ratelimit-remaining", "99"),
        ("ratelimit-reset", "1"),
    ]
    assert rendered(Decision(False, 10, -3, 12.2, 0.3)) == [
        ("ratelimit-limit", "10"),
        ("ratelimit-remaining", "0"),
        ("ratelimit-reset", "13"),
        ("retry-after", "1"),
    ]
    assert rendered(Decision(True, 10, 50, 0.0))[1:] == [
        ("ratelimit-remaining", "10"),
        ("ratelimit-reset", "0"),
    ]
    # Values past those rendered once (a few thousand per header) are rendered each time, alike.
    for limit in range(1, 6000, 7):
        assert rendered(Decision(True, limit, limit - 1, limit + 0.5))[0::2] == [
            ("ratelimit-limit", str(limit)),
            ("ratelimit-reset", str(limit + 1)),
        ]


async def test_every_limited_response_has_headers_and_the_excess_gets_429(serve: Serve) -> None:
    async with (
        serve(rate_limit_viewer=3) as app,
        http(app, await new_key(app, "viewer")) as viewer,
        http(app, await new_key(app, "viewer")) as other,
    ):
        responses = [await viewer.get("/api/v1/charges") for _ in range(4)]
        assert [r.status_code for r in responses[:3]] == [200, 200, 200]
        assert [r.headers["ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
        assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
        assert all(int(r.headers["ratelimit-reset"]) > 0 for r in responses)
        refused = responses[3]
        assert_problem(refused, 429)
        assert 19 <= int(refused.headers["retry-after"]) <= 20
        assert (await other.get("/api/v1/charges")).status_code == 200, "the limit is per key"


async def test_callers_without_a_valid_key_are_limited_per_address(serve: Serve) -> None:
    async with serve(rate_limit_anonymous=2) as app:
        async with http(app) as anonymous, http(app, "erp_not-a-key-but-long-enough-to-look-like-one") as bad:
            assert (await anonymous.get("/openapi.json")).status_code == 200
            assert_problem(await bad.get("/api/v1/charges"), 401)
            assert_problem(await anonymous.get("/openapi.json"), 429)
            assert_problem(await bad.get("/api/v1/charges"), 429)
        async with http(app, client=("10.0.0.9", 1234)) as elsewhere:
            assert (await elsewhere.get("/openapi.json")).status_code == 200
        async with http(app) as prober:
            probes = [await prober.get("/health") for _ in range(5)]
            assert all(p.status_code == 200 and "ratelimit-limit" not in p.headers for p in probes)


async def test_rate_limits_can_be_turned_off(serve: Serve) -> None:
    async with serve(rate_limit_enabled=False, rate_limit_anonymous=1) as app, http(app) as client:
        responses = [await client.get("/openapi.json") for _ in range(3)]
        assert all(r.status_code == 200 and "ratelimit-limit" not in r.headers for r in responses)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    url = services.require_redis()
    prefix = services.unique_name("erp-rl-test")
    yield prefix
    client = redis_client(url, timeout_seconds=2, max_connections=2)
    try:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_redis_limiter_is_gcra_shared_by_every_limiter_on_the_prefix(redis_prefix: str) -> None:
    clients = [redis_client(services.REDIS_URL, timeout_seconds=1, max_connections=2) for _ in range(2)]
    try:
        first, second = (RedisLimiter(client, 60, redis_prefix) for client in clients)
        decisions = [await (first if n % 2 else second).hit("key:7", 3) for n in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert 19 < decisions[3].retry_after_seconds <= 20
        assert (await first.hit("key:8", 3)).allowed
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.redis
async def test_redis_take_grants_what_fits_and_takes_back_unused_places(redis_prefix: str) -> None:
    client = redis_client(services.REDIS_URL, timeout_seconds=1, max_connections=2)
    try:
        limiter = RedisLimiter(client, 3600, redis_prefix)
        first = await limiter.take("key:9", 10, wanted=4)
        assert (first.granted, first.remaining) == (4, 6)
        second = await limiter.take("key:9", 10, wanted=8)
        assert (second.granted, second.remaining) == (6, 0), "as many as fit"
        refused = await limiter.take("key:9", 10, wanted=3)
        assert refused.granted == 0 and 359 < refused.retry_after_seconds <= 360
        assert 3599 < refused.reset_seconds <= 3600
        given_back = await limiter.take("key:9", 10, wanted=2, given_back=3)
        assert (given_back.granted, given_back.remaining) == (2, 1)
        assert (await limiter.take("key:9", 10, wanted=0, given_back=1)).granted == 0
        assert (await limiter.hit("key:9", 10)).remaining == 1, "a refused call still takes places back"
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_two_apps_sharing_redis_share_each_key_limit(serve: Serve, redis_prefix: str) -> None:
    settings = {
        "rate_limit_backend": "redis",
        "redis_url": services.REDIS_URL,
        "rate_limit_prefix": redis_prefix,
        "rate_limit_operator": 4,
    }
    async with serve(**settings) as one, serve(**settings) as two:
        key = await new_key(one, "operator")
        async with http(one, key) as first, http(two, key) as second:
            statuses = [
                (await (first if n % 2 else second).get("/api/v1/charges")).status_code for n in range(6)
            ]
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_without_redis_the_limiter_fails_open_to_memory_and_logs_once(
    serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with (
        serve(rate_limit_backend="redis", redis_url=dead, rate_limit_viewer=2) as app,
        http(app, await new_key(app, "viewer")) as viewer,
    ):
        statuses = [(await viewer.get("/api/v1/charges")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429], "limited per worker while Redis is away, never unlimited"
    events = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    warnings = [event for event in events if event["event"] == "rate_limit_redis_unavailable"]
    assert len(warnings) == 1 and warnings[0]["fallback"] == "memory"


async def test_a_failing_redis_is_retried_after_the_retry_interval() -> None:
    clock = Clock()
    dead = redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2, max_connections=1)
    limiter = RateLimiter(
        MemoryLimiter(60, 100, clock), RedisLimiter(dead, 60, "p"), retry_redis_after_seconds=5, clock=clock
    )
    try:
        assert (await limiter.hit("a", 10)).allowed
        assert not limiter.using_redis
        clock.now += 5
        assert limiter.using_redis
    finally:
        await dead.aclose()
