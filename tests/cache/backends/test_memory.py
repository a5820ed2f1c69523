"""The memory backend's bounds: entry count, bytes, LRU order, version table; and its isolation."""

from __future__ import annotations

import pytest

from cache.backends.base import Hit, Miss
from cache.backends.memory import MemoryBackend
from cache.serializers import RAW

CLOCK = "p:clock"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def put(
    backend: MemoryBackend, key: str, data: bytes, *, tags: tuple[str, ...] = (), namespace: str = "ns"
) -> None:
    version_keys = ("p:epoch", *tags)
    versions = await backend.capture(CLOCK, version_keys)
    await backend.set(
        namespace=namespace,
        key=key,
        version_keys=version_keys,
        versions=versions,
        value=Hit(RAW, data),
        ttl=60,
    )


async def present(backend: MemoryBackend, key: str, tags: tuple[str, ...] = ()) -> bool:
    return isinstance(await backend.get(key, ("p:epoch", *tags)), Hit)


async def test_entry_count_bound_evicts_least_recently_used() -> None:
    evicted: list[str] = []
    backend = MemoryBackend(max_entries=3, max_bytes=10_000)
    backend.set_eviction_listener(evicted.append)
    for key in ("a", "b", "c"):
        await put(backend, key, b"x", namespace=f"ns-{key}")

    assert await present(backend, "a")  # "a" is now the most recently used
    await put(backend, "d", b"x", namespace="ns-d")

    assert [await present(backend, key) for key in "abcd"] == [True, False, True, True]
    assert evicted == ["ns-b"]
    assert backend.size[0] == 3


async def test_byte_bound_evicts_until_the_new_entry_fits() -> None:
    evicted: list[str] = []
    backend = MemoryBackend(max_entries=100, max_bytes=300)
    backend.set_eviction_listener(evicted.append)
    for key in ("a", "b", "c"):
        await put(backend, key, b"x" * 80)  # 80 bytes + 1 for the key + 7 for "p:epoch"

    await put(backend, "d", b"y" * 150)

    assert [await present(backend, key) for key in "abcd"] == [False, False, True, True]
    assert evicted == ["ns", "ns"]
    entries, used = backend.size
    assert (entries, used) == (2, 88 + 158)
    assert used <= backend.max_bytes


async def test_value_larger_than_the_byte_bound_is_not_stored_and_evicts_nothing() -> None:
    backend = MemoryBackend(max_entries=10, max_bytes=100)
    await put(backend, "small", b"x")

    await put(backend, "huge", b"x" * 200)

    assert not await present(backend, "huge")
    assert await present(backend, "small")


async def test_replacing_an_entry_accounts_its_bytes_once() -> None:
    backend = MemoryBackend(max_entries=10, max_bytes=1000)
    await put(backend, "a", b"x" * 100)
    await put(backend, "a", b"x" * 10)

    assert backend.size == (1, 10 + 1 + 7)


async def test_ttl_uses_the_time_source() -> None:
    time = FakeTime()
    backend = MemoryBackend(time_source=time)
    await put(backend, "a", b"x")

    time.now += 59.9
    assert await present(backend, "a")
    time.now += 0.1
    assert not await present(backend, "a")
    assert backend.size == (0, 0)


async def test_invalidated_entry_is_dropped_when_read() -> None:
    backend = MemoryBackend()
    await put(backend, "a", b"x" * 10, tags=("p:v:t",))
    await backend.invalidate(CLOCK, ("p:v:t",))

    assert not await present(backend, "a", ("p:v:t",))
    assert backend.size == (0, 0)


async def test_version_table_is_bounded() -> None:
    backend = MemoryBackend(max_entries=10, max_versions=64)
    for index in range(500):
        await backend.invalidate(CLOCK, (f"p:v:{index}",))
        await backend.capture(CLOCK, (f"p:v:c{index}",))

    assert len(backend._versions) == 64


async def test_forgetting_a_version_never_makes_a_stale_entry_valid_again() -> None:
    backend = MemoryBackend(max_entries=10, max_versions=64)
    await put(backend, "stale", b"old", tags=("p:v:t",))  # "t" is created at the current clock
    await backend.invalidate(CLOCK, ("p:v:t",))
    for index in range(64):  # push "t" (but not the epoch) out of the version table
        await backend.capture(CLOCK, ("p:epoch", f"p:v:filler{index}"))
    assert "p:v:t" not in backend._versions
    assert "p:epoch" in backend._versions

    await backend.capture(CLOCK, ("p:epoch", "p:v:t"))  # another load re-creates "t"

    assert not await present(backend, "stale", ("p:v:t",))


async def test_forgotten_version_makes_its_entries_a_miss_not_a_stale_hit() -> None:
    backend = MemoryBackend(max_entries=10, max_versions=64)
    await put(backend, "a", b"x", tags=("p:v:t",))
    for index in range(64):
        await backend.capture(CLOCK, ("p:epoch", f"p:v:filler{index}"))

    assert isinstance(await backend.get("a", ("p:epoch", "p:v:t")), Miss)


@pytest.mark.parametrize(("entries", "size"), [(0, 10), (10, 0)])
def test_bounds_must_be_positive(entries: int, size: int) -> None:
    with pytest.raises(ValueError):
        MemoryBackend(max_entries=entries, max_bytes=size)


async def test_discarded_version_keys_invalidate_entries_and_captures_taken_before() -> None:
    backend = MemoryBackend()
    await put(backend, "a", b"a", tags=("t",))
    await put(backend, "b", b"b", tags=("u",))
    in_flight = backend.capture_now(("p:epoch", "t"))  # a fill that read before the discard

    backend.discard_versions(["t", "never-seen"])

    assert not await present(backend, "a", ("t",))
    assert await present(backend, "b", ("u",))
    recaptured = backend.capture_now(("p:epoch", "t"))
    assert recaptured != in_flight  # re-created at a newer clock value
    assert backend.store_now("ns", "a", ("p:epoch", "t"), in_flight, Hit(RAW, b"old"), 60) is False
    assert backend.store_now("ns", "a", ("p:epoch", "t"), recaptured, Hit(RAW, b"new"), 60) is True
    assert backend.lookup("a", ("p:epoch", "t")) == Hit(RAW, b"new")


async def test_clear_drops_everything_and_refuses_fills_captured_before() -> None:
    backend = MemoryBackend()
    await put(backend, "a", b"a", tags=("t",))
    in_flight = backend.capture_now(("p:epoch", "t"))

    backend.clear()

    assert backend.size == (0, 0)
    assert backend.lookup("a", ("p:epoch", "t")) is None
    assert backend.store_now("ns", "a", ("p:epoch", "t"), in_flight, Hit(RAW, b"old"), 60) is False
    backend.capture_now(("p:epoch", "t"))  # re-created after the clear: still not the old versions
    assert backend.store_now("ns", "a", ("p:epoch", "t"), in_flight, Hit(RAW, b"old"), 60) is False
