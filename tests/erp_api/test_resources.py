"""The composition root's choices: which cache a configuration gets."""

from __future__ import annotations

import pytest

from cache import MemoryBackend, NullBackend, RedisBackend, TieredBackend
from erp_api.resources import build_cache
from erp_api.settings import load_settings


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ({"cache_backend": "redis"}, TieredBackend),
        ({"cache_backend": "redis", "workers": 4}, TieredBackend),
        ({"cache_backend": "redis", "cache_l1": "on"}, TieredBackend),
        ({"cache_backend": "redis", "cache_l1": "off"}, RedisBackend),
        ({"cache_backend": "memory"}, MemoryBackend),
        ({"cache_backend": "none", "workers": 2}, NullBackend),
    ],
)
async def test_build_cache_puts_an_l1_in_front_of_redis_unless_switched_off(
    overrides: dict[str, object], kind: type
) -> None:
    settings = load_settings(redis_url="redis://127.0.0.1:1/0", **overrides)
    cache = build_cache(settings)
    try:
        backend = cache._backend
        assert type(backend) is kind
        if isinstance(backend, TieredBackend):
            assert backend.l1.max_entries == settings.cache_l1_max_entries
            assert backend.coherence_window == settings.cache_coherence_window_ms / 1000
    finally:
        await cache.close()
