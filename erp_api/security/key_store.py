"""API keys in the database, and the per-process cache that keeps authentication off the database.

``authenticate`` answers from a bounded in-memory map (key digest -> principal, or "no such key")
for ``ERP_AUTH_CACHE_TTL_SECONDS``; on a miss it reads the active keys with the presented key's
prefix and compares digests in constant time. Two rules keep the database out of the hot path:

- **One query per key and process.** Concurrent misses for one key share a single lookup
  (``SingleFlight``), so the requests that find a key's entry expired together cost one query.
- **Refresh ahead.** A hit in the last ``REFRESH_SHARE`` of a valid key's TTL starts one background
  lookup for it (if none is running) and is answered from the cache meanwhile; while the key keeps
  being used, its entry is renewed before it expires and no request waits for the database.

Revocation still reaches every worker within the TTL: an entry is served for at most the TTL after
the lookup that produced it *started*, a refresh that finds the key revoked stores "no such key",
and a refresh that fails leaves the entry to expire when it would have. In the worker that revoked
the key it stops at once (``forget``): the entry goes, and lookups already in flight (which may
have read the key before the revocation) neither store their answer nor serve later requests.
Background lookups are tracked and cancelled by ``close``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache.singleflight import SingleFlight
from erp_api.audit import trail as audit
from erp_api.db import utcnow
from erp_api.errors import Conflict, NotFound
from erp_api.security.keys import digests_match, generate_key, is_plausible_key, key_digest, key_prefix
from erp_api.security.models import ApiKey
from erp_api.security.principal import Principal
from erp_api.security.roles import Role
from erp_api.security.ttl_cache import TTLCache

AUDIT_ENTITY = "api_key"
REFRESH_SHARE = 0.2
"""A hit in this last share of an entry's TTL refreshes it in the background."""


class Ensured(StrEnum):
    CREATED = "created"
    PRESENT = "present"
    REVOKED = "revoked"


def key_dict(key: ApiKey) -> dict[str, Any]:
    """A key as listed and audited: never its secret or digest."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


class KeyStore:
    """Creates, lists, revokes and authenticates API keys."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_ttl_seconds: float,
        cache_max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: TTLCache[str, Principal | None] = TTLCache(
            cache_ttl_seconds, cache_max_entries, clock, refresh_share=REFRESH_SHARE
        )
        # Keyed by (generation, digest): ``forget`` starts a new generation, so no later request
        # joins a lookup that may have read a key before it was revoked.
        self._loads: SingleFlight[tuple[int, str], Principal | None] = SingleFlight()
        self._generation = 0
        self._tasks: set[asyncio.Task[Principal | None]] = set()
        # Presented key -> its digest: a pure function, remembered so that a key sent again costs
        # neither the plausibility check nor the hash (forgotten all at once when full).
        self._digests: dict[str, str] = {}
        self._max_digests = cache_max_entries

    async def authenticate(self, key: str) -> Principal | None:
        """The principal of an active key, or None; cached (unknown keys too) for the TTL."""
        digest = self._digests.get(key)
        if digest is None:
            if not is_plausible_key(key):
                return None
            digest = key_digest(key)
            if len(self._digests) >= self._max_digests:
                self._digests.clear()
            self._digests[key] = digest
        hit, principal, due = self._cache.get(digest)
        if hit:
            if due and principal is not None:
                self._load(key, digest)
            return principal
        return await asyncio.shield(self._load(key, digest))

    def _load(self, key: str, digest: str) -> asyncio.Task[Principal | None]:
        """The running lookup of ``digest`` in this generation, or a new one."""
        flight = (self._generation, digest)
        task = self._loads.running(flight)
        if task is None:
            task = self._loads.start(flight, self._lookup_and_store(flight, key_prefix(key), digest))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return task

    async def _lookup_and_store(self, flight: tuple[int, str], prefix: str, digest: str) -> Principal | None:
        started = self._clock()
        principal = await self._lookup(prefix, digest)
        if flight[0] == self._generation:
            self._cache.put(digest, principal, read_at=started)
        return principal

    async def _lookup(self, prefix: str, digest: str) -> Principal | None:
        stmt = select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.key_hash).where(
            ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        found = None
        # Every candidate is compared, so the time taken does not depend on which one matched.
        for row in rows:
            if digests_match(row.key_hash, digest):
                found = Principal(row.id, row.name, Role(row.role))
        return found

    def forget(self, key_id: int) -> None:
        """Stop serving ``key_id`` from this process's cache (after revoking it)."""
        self._generation += 1
        self._cache.discard_if(lambda principal: principal is not None and principal.key_id == key_id)

    async def close(self) -> None:
        """Cancel the lookups still running (background refreshes, or misses nobody waits for)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def create(self, *, role: Role, name: str, key: str | None = None) -> tuple[ApiKey, str]:
        """Store a new key (a random one unless ``key`` is given); returns the row and the key."""
        secret = key or generate_key()
        async with self._sessions.begin() as session:
            row = ApiKey(
                prefix=key_prefix(secret),
                key_hash=key_digest(secret),
                name=name,
                role=role.value,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            await audit.record(
                session, entity=AUDIT_ENTITY, entity_id=row.id, action="create", after=key_dict(row)
            )
        return row, secret

    async def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        stmt = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        async with self._sessions() as session:
            return list((await session.scalars(stmt)).all())

    async def revoke(self, reference: str) -> ApiKey:
        """Revoke the active key with this id or prefix; 404 if none, 409 if the prefix is ambiguous."""
        stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None))
        if reference.isdigit():
            if int(reference) >= 2**63:
                raise NotFound(f"no active key has the id {reference:.40}")
            stmt = stmt.where(ApiKey.id == int(reference))
        else:
            stmt = stmt.where(ApiKey.prefix == reference)
        async with self._sessions.begin() as session:
            rows = list((await session.scalars(stmt.with_for_update())).all())
            if not rows:
                raise NotFound(f"no active key has the id or prefix {reference!r:.60}")
            if len(rows) > 1:
                raise Conflict(f"{len(rows)} active keys share the prefix {reference!r}; revoke by id")
            key = rows[0]
            before = key_dict(key)
            key.revoked_at = utcnow()
            await audit.record(
                session,
                entity=AUDIT_ENTITY,
                entity_id=key.id,
                action="revoke",
                before=before,
                after=key_dict(key),
            )
        self.forget(key.id)
        return key

    async def ensure(self, key: str, *, role: Role, name: str) -> Ensured:
        """Make ``key`` an active key of ``role`` unless it exists; a revoked one stays revoked."""
        async with self._sessions() as session:
            existing = (
                await session.scalars(select(ApiKey).where(ApiKey.key_hash == key_digest(key)))
            ).first()
        if existing is not None:
            return Ensured.REVOKED if existing.revoked_at is not None else Ensured.PRESENT
        try:
            await self.create(role=role, name=name, key=key)
        except IntegrityError:
            # Another worker starting at the same moment inserted it first.
            return Ensured.PRESENT
        return Ensured.CREATED
