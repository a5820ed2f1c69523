"""The backend contract, run against every storing backend (memory and a real Redis)."""

from __future__ import annotations

import asyncio

from cache.backends.base import CacheBackend, Hit, Miss
from cache.serializers import JSON, RAW

ALL_BYTES = bytes(range(256)) * 3


class Keys:
    def __init__(self, prefix: str) -> None:
        self.clock = f"{prefix}:clock"
        self.epoch = f"{prefix}:epoch"
        self.prefix = prefix

    def entry(self, name: str) -> str:
        return f"{self.prefix}:e:ns:{name}"

    def versions(self, *tags: str) -> tuple[str, ...]:
        return (self.epoch, *(f"{self.prefix}:v:{tag}" for tag in tags))


async def store(
    backend: CacheBackend, keys: Keys, name: str, tags: tuple[str, ...], data: bytes, ttl: float = 60.0
) -> None:
    version_keys = keys.versions(*tags)
    versions = await backend.capture(keys.clock, version_keys)
    await backend.set(
        namespace="ns",
        key=keys.entry(name),
        version_keys=version_keys,
        versions=versions,
        value=Hit(RAW, data),
        ttl=ttl,
    )


async def test_stored_bytes_come_back_exactly(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "a", ("t",), ALL_BYTES)
    await store(backend, keys, "empty", (), b"")

    assert await backend.get(keys.entry("a"), keys.versions("t")) == Hit(RAW, ALL_BYTES)
    assert await backend.get(keys.entry("empty"), keys.versions()) == Hit(RAW, b"")


async def test_format_tag_is_kept(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    version_keys = keys.versions("t")
    versions = await backend.capture(keys.clock, version_keys)
    value = Hit(JSON, b'{"a":1}')
    await backend.set(
        namespace="ns", key=keys.entry("j"), version_keys=version_keys, versions=versions, value=value, ttl=60
    )

    assert await backend.get(keys.entry("j"), version_keys) == value


async def test_missing_entry_is_a_miss_that_reports_current_versions_or_none(
    backend: CacheBackend, prefix: str
) -> None:
    keys = Keys(prefix)
    captured = await backend.capture(keys.clock, keys.versions("t"))

    found = await backend.get(keys.entry("nothing"), keys.versions("t"))

    assert isinstance(found, Miss)
    assert found.versions in (None, captured)


async def test_entry_is_only_found_with_the_version_keys_it_was_stored_with(
    backend: CacheBackend, prefix: str
) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "a", ("t1", "t2"), b"value")
    await backend.capture(keys.clock, keys.versions("other"))

    assert isinstance(await backend.get(keys.entry("a"), keys.versions("t1")), Miss)
    assert isinstance(await backend.get(keys.entry("a"), keys.versions("t2", "t1")), Miss)
    assert isinstance(await backend.get(keys.entry("a"), keys.versions("other", "t2")), Miss)
    assert isinstance(await backend.get(keys.entry("a"), keys.versions("t1", "t2")), Hit)


async def test_invalidating_any_tag_of_an_entry_makes_it_a_miss(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "a", ("t1", "t2"), b"a")
    await store(backend, keys, "b", ("t2",), b"b")
    await store(backend, keys, "c", ("t3",), b"c")

    await backend.invalidate(keys.clock, keys.versions("t1")[1:])

    assert isinstance(await backend.get(keys.entry("a"), keys.versions("t1", "t2")), Miss)
    assert await backend.get(keys.entry("b"), keys.versions("t2")) == Hit(RAW, b"b")
    await backend.invalidate(keys.clock, keys.versions("t2", "t9")[1:])
    assert isinstance(await backend.get(keys.entry("b"), keys.versions("t2")), Miss)
    assert await backend.get(keys.entry("c"), keys.versions("t3")) == Hit(RAW, b"c")


async def test_invalidating_the_epoch_makes_every_entry_a_miss(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "a", ("t1",), b"a")
    await store(backend, keys, "b", (), b"b")

    await backend.invalidate(keys.clock, (keys.epoch,))

    assert isinstance(await backend.get(keys.entry("a"), keys.versions("t1")), Miss)
    assert isinstance(await backend.get(keys.entry("b"), keys.versions()), Miss)


async def test_value_loaded_before_an_invalidation_is_never_served_after_it(
    backend: CacheBackend, prefix: str
) -> None:
    keys = Keys(prefix)
    version_keys = keys.versions("t")
    captured_before = await backend.capture(keys.clock, version_keys)
    await backend.invalidate(keys.clock, version_keys[1:])  # lands while the loader runs

    await backend.set(
        namespace="ns",
        key=keys.entry("a"),
        version_keys=version_keys,
        versions=captured_before,
        value=Hit(RAW, b"stale"),
        ttl=60,
    )

    assert isinstance(await backend.get(keys.entry("a"), version_keys), Miss)


async def test_versions_are_stable_until_invalidated_and_then_never_repeat(
    backend: CacheBackend, prefix: str
) -> None:
    keys = Keys(prefix)
    version_keys = keys.versions("t", "u")
    seen = [await backend.capture(keys.clock, version_keys)]
    assert await backend.capture(keys.clock, version_keys) == seen[0]

    for _ in range(5):
        await backend.invalidate(keys.clock, version_keys[1:2])
        current = await backend.capture(keys.clock, version_keys)
        assert current[1] not in [versions[1] for versions in seen]
        assert current[2] == seen[0][2]  # "u" was not invalidated
        seen.append(current)


async def test_entries_expire_after_their_ttl(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "short", (), b"x", ttl=0.2)
    await store(backend, keys, "long", (), b"y", ttl=30)

    assert isinstance(await backend.get(keys.entry("short"), keys.versions()), Hit)
    await asyncio.sleep(0.35)

    assert isinstance(await backend.get(keys.entry("short"), keys.versions()), Miss)
    assert isinstance(await backend.get(keys.entry("long"), keys.versions()), Hit)


async def test_storing_again_replaces_the_value(backend: CacheBackend, prefix: str) -> None:
    keys = Keys(prefix)
    await store(backend, keys, "a", ("t",), b"first")
    await store(backend, keys, "a", ("t",), b"second")

    assert await backend.get(keys.entry("a"), keys.versions("t")) == Hit(RAW, b"second")


async def test_ping_answers(backend: CacheBackend) -> None:
    await backend.ping()


async def test_prefixes_do_not_share_versions(backend: CacheBackend, prefix: str) -> None:
    mine, other = Keys(prefix), Keys(f"{prefix}:other")
    await store(backend, mine, "a", ("t",), b"mine")

    await backend.invalidate(other.clock, other.versions("t"))

    assert await backend.get(mine.entry("a"), mine.versions("t")) == Hit(RAW, b"mine")
