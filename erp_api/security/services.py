"""What the lifespan builds for the security layer: the key store and the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.security.key_store import Ensured, KeyStore
from erp_api.security.rate_lease import LeasedLimiter
from erp_api.security.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter, redis_client
from erp_api.security.roles import Role
from erp_api.settings import Settings

BOOTSTRAP_KEY_NAME = "bootstrap admin (ERP_BOOTSTRAP_ADMIN_KEY)"

log = structlog.get_logger("erp_api.security")


@dataclass
class SecurityServices:
    keys: KeyStore
    limiter: RateLimiter
    redis: Redis | None = None

    async def close(self) -> None:
        await self.keys.close()
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()


def uses_redis_rate_limits(settings: Settings) -> bool:
    """``auto`` means Redis exactly when the cache is in Redis, i.e. when workers share one."""
    backend = settings.rate_limit_backend
    return backend == "redis" or (backend == "auto" and settings.cache_backend == "redis")


def build_security(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> SecurityServices:
    keys = KeyStore(
        sessions,
        cache_ttl_seconds=settings.auth_cache_ttl_seconds,
        cache_max_entries=settings.auth_cache_max_entries,
    )
    memory = MemoryLimiter(settings.rate_limit_window_seconds, settings.rate_limit_max_buckets)
    client = None
    shared = None
    if settings.rate_limit_enabled and uses_redis_rate_limits(settings):
        client = redis_client(
            settings.redis_url,
            timeout_seconds=settings.redis_timeout_seconds,
            max_connections=settings.redis_pool_size,
        )
        shared = LeasedLimiter(
            RedisLimiter(client, settings.rate_limit_window_seconds, settings.rate_limit_prefix),
            max_lease_tokens=settings.rate_limit_lease_tokens,
            max_buckets=settings.rate_limit_max_buckets,
        )
    limiter = RateLimiter(memory, shared, timeout_seconds=settings.redis_timeout_seconds)
    return SecurityServices(keys, limiter, client)


async def ensure_bootstrap_key(settings: Settings, keys: KeyStore) -> Ensured | None:
    """Make ``ERP_BOOTSTRAP_ADMIN_KEY`` an admin key if it is set (idempotent; a revoked one stays so)."""
    if settings.bootstrap_admin_key is None:
        return None
    outcome = await keys.ensure(
        settings.bootstrap_admin_key.get_secret_value(), role=Role.ADMIN, name=BOOTSTRAP_KEY_NAME
    )
    if outcome is Ensured.REVOKED:
        log.warning("bootstrap_admin_key_revoked", hint="remove ERP_BOOTSTRAP_ADMIN_KEY from the environment")
    elif outcome is Ensured.CREATED:
        log.info("bootstrap_admin_key_created")
    return outcome
