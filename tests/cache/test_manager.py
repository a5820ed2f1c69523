"""CacheManager: get-or-load, the decorator, tags, namespaces, TTL and jitter, stats and hooks."""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any

import pytest

import cache
from cache import CacheBackend, CacheManager, MemoryBackend, NullBackend, RedisBackend, build_backend
from tests.cache.conftest import delete_prefix
from tests.services import require_redis


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Database:
    """What loaders read: values by id, and how often each was read."""

    def __init__(self) -> None:
        self.values: dict[int, str] = {}
        self.reads: dict[int, int] = {}

    async def load(self, item: int) -> bytes:
        self.reads[item] = self.reads.get(item, 0) + 1
        await asyncio.sleep(0)
        return self.values.get(item, "none").encode()


@pytest.fixture
def db() -> Database:
    return Database()


@pytest.fixture
async def manager(backend: CacheBackend, prefix: str) -> CacheManager:
    return CacheManager(backend, prefix=prefix, default_ttl=60, jitter=0.1)


async def test_second_call_is_served_from_the_cache(manager: CacheManager, db: Database) -> None:
    db.values[1] = "one"

    first = await manager.get_or_load("items", ("get", 1), lambda: db.load(1), tags=["item:1"])
    db.values[1] = "changed without invalidation"
    second = await manager.get_or_load("items", ("get", 1), lambda: db.load(1), tags=["item:1"])

    assert first == second == b"one"
    assert db.reads[1] == 1
    assert manager.stats()["items"] == {
        "hits": 1,
        "misses": 1,
        "coalesced": 0,
        "bypassed": 0,
        "errors": 0,
        "evictions": 0,
    }


async def test_invalidating_a_tag_reloads_only_entries_with_that_tag(
    manager: CacheManager, db: Database
) -> None:
    @manager.cached(namespace="charges", ttl=30, tags=["charge:{charge_id}", "charges"])
    async def charge_json(charge_id: int) -> bytes:
        return await db.load(charge_id)

    db.values.update({42: "a", 43: "b"})
    assert (await charge_json(42), await charge_json(43)) == (b"a", b"b")
    db.values.update({42: "a2", 43: "b2"})

    assert await manager.invalidate_tags(["charge:42"]) is True

    assert (await charge_json(42), await charge_json(43)) == (b"a2", b"b")
    assert await manager.invalidate_tags(["charges"]) is True
    assert await charge_json(43) == b"b2"


async def test_decorator_key_is_the_bound_arguments(manager: CacheManager, db: Database) -> None:
    @manager.cached(namespace="charges", tags=["charge:{charge_id}"])
    async def charge_json(charge_id: int, fmt: str = "json") -> bytes:
        return await db.load(charge_id)

    db.values[7] = "seven"
    results = {await charge_json(7), await charge_json(charge_id=7), await charge_json(7, "json")}
    results.add(await manager.get_or_load("charges", (7, "json"), lambda: db.load(7), tags=["charge:7"]))

    assert results == {b"seven"}
    assert db.reads[7] == 1
    assert charge_json.key(7) == ((7, "json"), ("charge:7",))
    assert await charge_json.peek(7) == b"seven"
    assert await charge_json(7, "xml") == b"seven"
    assert db.reads[7] == 2


async def test_decorator_handles_variadic_and_keyword_only_parameters(manager: CacheManager) -> None:
    calls: list[tuple[Any, ...]] = []

    @manager.cached(namespace="search", tags=["search"])
    async def search(*terms: str, limit: int = 10, **filters: str) -> list[Any]:
        calls.append((terms, limit, filters))
        return [list(terms), limit, filters]

    assert await search("a", "b", state="open") == [["a", "b"], 10, {"state": "open"}]
    assert await search("a", "b", limit=10, state="open") == [["a", "b"], 10, {"state": "open"}]
    assert await search("a", "b", state="closed") == [["a", "b"], 10, {"state": "closed"}]
    assert await search("a:b") == [["a:b"], 10, {}]
    assert len(calls) == 3
    assert search.__name__ == "search"
    assert search.uncached.__name__ == "search"


async def test_tag_templates_may_use_attributes(manager: CacheManager, db: Database) -> None:
    class Kind(enum.Enum):
        BATCH = "batch"

    @manager.cached(namespace="things", tags=["{kind.value}:{item}"])
    async def thing(kind: Kind, item: int) -> bytes:
        return await db.load(item)

    await thing(Kind.BATCH, 1)
    await manager.invalidate_tags(["batch:1"])
    await thing(Kind.BATCH, 1)

    assert db.reads[1] == 2


def test_tag_template_naming_no_parameter_is_refused() -> None:
    manager = CacheManager(MemoryBackend())
    with pytest.raises(ValueError, match="not a parameter"):

        @manager.cached(namespace="x", tags=["charge:{id}"])
        async def charge(charge_id: int) -> bytes:
            return b""


async def test_namespaces_keep_equal_keys_apart(manager: CacheManager) -> None:
    async def value(text: bytes) -> bytes:
        return text

    await manager.get_or_load("a", 1, lambda: value(b"in a"))

    assert await manager.get_or_load("b", 1, lambda: value(b"in b")) == b"in b"
    assert await manager.get_or_load("a", 1, lambda: value(b"other")) == b"in a"
    assert set(manager.stats()) == {"a", "b"}


async def test_json_values_are_fresh_objects_every_time(manager: CacheManager) -> None:
    async def load() -> dict[str, Any]:
        return {"items": [1, 2], "pair": (3, 4)}

    first = await manager.get_or_load("json", "k", load)
    first["items"].append(99)
    second = await manager.get_or_load("json", "k", load)

    assert first is not second
    assert second == {"items": [1, 2], "pair": [3, 4]}  # the same shape on a miss as on a hit
    assert manager.stats()["json"]["hits"] == 1


async def test_get_raw_peeks_without_loading_or_counting(manager: CacheManager, db: Database) -> None:
    db.values[5] = "five"
    assert await manager.get_raw("items", ("get", 5), ["item:5"]) is None

    await manager.get_or_load("items", ("get", 5), lambda: db.load(5), tags=["item:5"])

    assert await manager.get_raw("items", ("get", 5), ["item:5"]) == b"five"
    assert await manager.get_raw("items", ("get", 5), ["item:6"]) is None
    await manager.invalidate_tags(["item:5"])
    assert await manager.get_raw("items", ("get", 5), ["item:5"]) is None
    assert manager.stats()["items"]["hits"] == 0
    assert manager.stats()["items"]["misses"] == 1


async def test_peek_returns_what_get_or_load_would_from_the_cache_and_never_loads(
    manager: CacheManager, db: Database
) -> None:
    db.values[5] = "five"
    assert await manager.peek("items", ("get", 5), ["item:5"]) is None
    assert db.reads == {}

    await manager.get_or_load("items", ("get", 5), lambda: db.load(5), tags=["item:5"])

    assert await manager.peek("items", ("get", 5), ["item:5"]) == b"five"
    assert await manager.peek("items", ("get", 5), ["item:6"]) is None
    await manager.invalidate_tags(["item:5"])
    assert await manager.peek("items", ("get", 5), ["item:5"]) is None
    assert db.reads == {5: 1}
    # The hit counts; the misses are left to the get_or_load a caller makes next.
    assert manager.stats()["items"]["hits"] == 1
    assert manager.stats()["items"]["misses"] == 1


async def test_a_prepared_entry_peeks_as_peek_does_and_follows_every_invalidation(
    manager: CacheManager, db: Database
) -> None:
    db.values[5] = "five"
    entry = manager.entry("items", ("get", 5), ["item:5"])
    elsewhere = manager.entry("items", ("get", 5), ["item:6"])
    assert await manager.peek_entry(entry) is None

    await manager.get_or_load("items", ("get", 5), lambda: db.load(5), tags=["item:5"])

    assert await manager.peek_entry(entry) == await manager.peek("items", ("get", 5), ["item:5"]) == b"five"
    assert await manager.peek_entry(elsewhere) is None  # other tags: another entry
    await manager.invalidate_tags(["item:5"])
    assert await manager.peek_entry(entry) is None  # names only: the versions are read each time
    db.values[5] = "new"
    await manager.get_or_load("items", ("get", 5), lambda: db.load(5), tags=["item:5"])
    assert await manager.peek_entry(entry) == b"new"
    await manager.invalidate_all()
    assert await manager.peek_entry(entry) is None
    assert manager.stats()["items"]["hits"] == 3


def test_a_prepared_entry_is_refused_what_get_or_load_refuses(manager: CacheManager) -> None:
    with pytest.raises(ValueError, match="namespace"):
        manager.entry("bad namespace", 1)
    with pytest.raises(TypeError, match="cache key"):
        manager.entry("items", object())
    with pytest.raises(ValueError, match="non-empty"):
        manager.entry("items", 1, [""])
    with pytest.raises(TypeError, match="collection of tags"):
        manager.entry("items", 1, "item:1")


async def test_peek_gives_json_values_as_get_or_load_does(manager: CacheManager) -> None:
    async def load() -> dict[str, list[int]]:
        return {"a": [1]}

    await manager.get_or_load("json", "k", load)

    assert await manager.peek("json", "k") == {"a": [1]}


async def test_get_raw_returns_the_json_encoding_of_json_values(manager: CacheManager) -> None:
    async def load() -> dict[str, int]:
        return {"a": 1}

    await manager.get_or_load("json", "k", load)

    assert await manager.get_raw("json", "k") == b'{"a":1}'


async def test_invalidate_all_drops_every_entry(manager: CacheManager, db: Database) -> None:
    await manager.get_or_load("items", 1, lambda: db.load(1), tags=["a"])
    await manager.get_or_load("items", 2, lambda: db.load(2))

    assert await manager.invalidate_all() is True
    await manager.get_or_load("items", 1, lambda: db.load(1), tags=["a"])
    await manager.get_or_load("items", 2, lambda: db.load(2))

    assert db.reads == {1: 2, 2: 2}


async def test_events_reach_the_hook(backend: CacheBackend, prefix: str, db: Database) -> None:
    events: list[tuple[str, str]] = []
    manager = CacheManager(backend, prefix=prefix, on_event=lambda ns, event: events.append((ns, event)))

    await manager.get_or_load("items", 1, lambda: db.load(1))
    await manager.get_or_load("items", 1, lambda: db.load(1))

    assert events == [("items", "miss"), ("items", "hit")]


async def test_memory_evictions_are_counted_per_namespace(db: Database) -> None:
    events: list[tuple[str, str]] = []
    manager = CacheManager(
        MemoryBackend(max_entries=2), on_event=lambda ns, event: events.append((ns, event))
    )
    await manager.get_or_load("old", 1, lambda: db.load(1))
    await manager.get_or_load("new", 2, lambda: db.load(2))
    await manager.get_or_load("new", 3, lambda: db.load(3))

    assert manager.stats()["old"]["evictions"] == 1
    assert manager.stats()["new"]["evictions"] == 0
    assert ("old", "eviction") in events


async def test_entries_expire_after_their_ttl_with_downward_jitter(db: Database) -> None:
    time = FakeTime()
    manager = CacheManager(MemoryBackend(time_source=time), default_ttl=100, jitter=0.2)
    for item in range(200):
        await manager.get_or_load("items", item, functools.partial(db.load, item))

    async def cached_count() -> int:
        found = [await manager.get_raw("items", item) for item in range(200)]
        return sum(value is not None for value in found)

    time.now += 79.9
    assert await cached_count() == 200  # nothing expires before ttl * (1 - jitter)
    time.now += 10
    assert 0 < await cached_count() < 200  # spread out, not all at once
    time.now += 10.2
    assert await cached_count() == 0  # nothing outlives the ttl


async def test_explicit_ttl_overrides_the_default(db: Database) -> None:
    time = FakeTime()
    manager = CacheManager(MemoryBackend(time_source=time), default_ttl=100, jitter=0)
    await manager.get_or_load("items", 1, lambda: db.load(1), ttl=5)

    time.now += 4.9
    assert await manager.get_raw("items", 1) is not None
    time.now += 0.2
    assert await manager.get_raw("items", 1) is None


async def test_caching_off_runs_the_loader_every_time(db: Database) -> None:
    manager = CacheManager(build_backend("none"))
    for _ in range(3):
        assert await manager.get_or_load("items", 1, lambda: db.load(1), tags=["t"]) == b"none"

    assert db.reads[1] == 3
    assert manager.stats()["items"]["bypassed"] == 3
    assert await manager.invalidate_tags(["t"]) is True
    assert await manager.ping() is True
    assert await manager.get_raw("items", 1) is None


async def test_a_hit_creates_no_task(manager: CacheManager, db: Database) -> None:
    created = 0
    loop = asyncio.get_running_loop()
    package = str(Path(cache.__file__).parent)

    def counting_factory(
        loop: asyncio.AbstractEventLoop,
        coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        # Only tasks for the cache's own coroutines: redis-py makes one per command for its timeouts.
        nonlocal created
        code = getattr(coro, "cr_code", None)
        created += code is not None and code.co_filename.startswith(package)
        return asyncio.Task(coro, loop=loop, **kwargs)

    @manager.cached(namespace="items", tags=["item:{item}"])
    async def item_json(item: int) -> bytes:
        return await db.load(item)

    await item_json(1)
    loop.set_task_factory(counting_factory)
    try:
        for _ in range(50):
            await item_json(1)
        await manager.get_or_load("items", (1,), lambda: db.load(1), tags=["item:1"])
        misses_before = created
        await item_json(2)
    finally:
        loop.set_task_factory(None)

    assert misses_before == 0
    assert created == 1  # the miss runs its load in one task
    assert db.reads == {1: 1, 2: 1}


async def test_close_stops_using_the_backend(db: Database) -> None:
    backend = MemoryBackend()
    manager = CacheManager(backend)
    await manager.get_or_load("items", 1, lambda: db.load(1))

    await manager.close()

    assert await manager.get_or_load("items", 1, lambda: db.load(1)) == b"none"
    assert db.reads[1] == 2
    assert manager.serving_from_cache is False


@pytest.mark.redis
async def test_prefixes_isolate_managers_sharing_a_redis(prefix: str, db: Database) -> None:
    url = require_redis()
    first = CacheManager(RedisBackend(url), prefix=prefix)
    second = CacheManager(RedisBackend(url), prefix=f"{prefix}-b")
    try:
        db.values[1] = "first"
        await first.get_or_load("items", 1, lambda: db.load(1), tags=["t"])
        db.values[1] = "second"

        assert await second.get_or_load("items", 1, lambda: db.load(1), tags=["t"]) == b"second"
        await second.invalidate_tags(["t"])
        assert await first.get_or_load("items", 1, lambda: db.load(1), tags=["t"]) == b"first"
    finally:
        await first.close()
        await second.close()
        delete_prefix(url, f"{prefix}-b")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.get_or_load("bad:ns", 1, lambda: None), ValueError),
        (lambda m: m.get_or_load("ns", object(), lambda: None), TypeError),
        (lambda m: m.get_or_load("ns", 1, lambda: None, tags=[""]), ValueError),
        (lambda m: m.get_or_load("ns", 1, lambda: None, tags=["a\nb"]), ValueError),
        (lambda m: m.get_or_load("ns", 1, lambda: None, ttl=0), ValueError),
        (lambda m: m.invalidate_tags(["ok", ""]), ValueError),
        (lambda m: m.invalidate_tags("charge:1"), TypeError),
        (lambda m: m.get_or_load("ns", 1, lambda: None, tags="charge:1"), TypeError),
    ],
)
async def test_invalid_arguments_are_refused(call: Any, error: type[Exception]) -> None:
    manager = CacheManager(MemoryBackend())
    with pytest.raises(error):
        await call(manager)


def test_unstorable_value_raises_type_error() -> None:
    manager = CacheManager(MemoryBackend())

    async def load() -> set[int]:
        return {1}

    with pytest.raises(TypeError):
        asyncio.run(manager.get_or_load("ns", 1, load))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"prefix": "a:b"}, ValueError), ({"jitter": 1.0}, ValueError), ({"default_ttl": -1}, ValueError)],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        CacheManager(MemoryBackend(), **kwargs)


def test_build_backend_picks_the_kind() -> None:
    assert isinstance(build_backend("memory", max_entries=5), MemoryBackend)
    assert isinstance(build_backend("none"), NullBackend)
    assert isinstance(build_backend("redis", redis_url="redis://127.0.0.1:1/0"), RedisBackend)
    with pytest.raises(ValueError):
        build_backend("redis")
    with pytest.raises(ValueError):
        build_backend("disk")  # type: ignore[arg-type]
