"""The TTL map behind the key cache: expiry from the moment a value was read, refresh due, LRU bound."""

from __future__ import annotations

from erp_api.security.ttl_cache import TTLCache
from tests.security.fixtures import Clock


def test_an_entry_is_served_for_the_ttl_and_due_for_a_refresh_in_its_last_share() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10, 100, clock, refresh_share=0.2)
    cache.put("a", 1)
    assert cache.get("a") == (True, 1, False)
    clock.now += 7.9
    assert cache.get("a") == (True, 1, False)
    clock.now += 0.1
    assert cache.get("a") == (True, 1, True)
    clock.now += 2
    assert cache.get("a") == (False, None, False)
    assert len(cache) == 0, "an expired entry is dropped"


def test_the_ttl_counts_from_when_the_value_was_read_not_when_it_was_stored() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10, 100, clock)
    read_at = clock.now
    clock.now += 4
    cache.put("a", 1, read_at=read_at)
    clock.now += 5.9
    assert cache.get("a").hit
    clock.now += 0.1
    assert not cache.get("a").hit
    cache.put("b", 2, read_at=clock.now - 10)
    assert len(cache) == 0, "a value read a whole TTL ago is not stored at all"


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    cache: TTLCache[str, int] = TTLCache(10, 2, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a").hit
    cache.put("c", 3)
    assert [cache.get(key).hit for key in "abc"] == [True, False, True]


def test_a_zero_ttl_stores_nothing() -> None:
    cache: TTLCache[str, int] = TTLCache(0, 2, Clock())
    cache.put("a", 1)
    assert not cache.get("a").hit
