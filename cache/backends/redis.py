"""A Redis backend (redis-py asyncio) shared by every process of a deployment.

Reading an entry is one ``MGET`` of the entry key and its version keys (epoch first); the entry
carries the version keys and versions it was stored with, and is a hit only if they all still match.
Capturing versions, invalidating and storing are single Lua scripts (``redis_scripts``), so each is
one atomic round trip.

Every call is bounded: ``socket_connect_timeout`` for connecting, ``socket_timeout`` for each
read/write, ``pool_timeout`` for waiting on a free connection out of ``max_connections``. Retries
are off: a slow Redis should cost one timeout and then count against the circuit breaker, not
several. All failures surface as ``BackendUnavailable``.

Concurrent reads of one key share round trips (``cache.singleflight.SharedReads``): a hot key read
by many callers at once costs at most two ``MGET``s in flight, and no caller gets a read that was
sent before it arrived.

Once bound to a prefix (``bind_prefix``), every invalidation also publishes the version keys it
moved on ``<prefix>:invalidations``, inside the same script, for the per-process copies of
``cache.backends.tiered``.

Version keys expire ``version_ttl`` seconds after their last use, which bounds the bookkeeping for
tags that are no longer used; ``max_ttl`` keeps every entry TTL shorter, and storing an entry renews
its version keys, so a version key normally outlives every entry that refers to it. Even if one
disappears early (expiry, eviction), a missing version never matches and a re-created one starts at
the current clock, never at an old version. The per-prefix clock key has no TTL; use a
``volatile-*`` or ``noeviction`` ``maxmemory-policy`` so Redis does not evict it. Needs Redis >= 5
(scripts that call ``TIME`` and then write); Redis Cluster is not supported.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from typing import NamedTuple, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from cache.backends.base import MISS, BackendUnavailable, CacheBackend, Hit, Miss, Versions
from cache.backends.redis_scripts import CAPTURE, INVALIDATE, READ, STORE
from cache.serializers import FORMATS
from cache.singleflight import SharedReads

__all__ = ["RedisBackend", "VersionedRead"]

_ERRORS = (RedisError, OSError)  # TimeoutError is an OSError
_HEADER = struct.Struct(">BI")  # format tag, length of the version metadata that follows
_DAY = 86_400.0


def _metadata(version_keys: tuple[str, ...], versions: Versions) -> bytes:
    # Stored entries only have validated tags (no control characters) and versions are digits, so
    # this is injective for every entry that can exist: a read with other tags cannot match it.
    return "\x1f".join(version_keys).encode() + b"\x1e" + b",".join(versions)  # type: ignore[arg-type]


def _entry(blob: bytes | None, version_keys: tuple[str, ...], versions: Versions) -> Hit | None:
    """The value in ``blob`` if it was stored with exactly these version keys and versions."""
    if blob and blob[0] in FORMATS:
        start = _HEADER.size
        end = start + int.from_bytes(blob[1:start], "big")
        if blob[start:end] == _metadata(version_keys, versions):
            return Hit(blob[0], blob[end:])
    return None


class VersionedRead(NamedTuple):
    """An entry read together with its current versions and remaining lifetime (``RedisBackend.read``)."""

    hit: Hit | None
    versions: Versions | None
    """The current versions, None if any version key is missing (then ``hit`` is None too)."""
    ttl: float
    """Seconds the entry has left (0.0 unless ``hit``)."""


_NO_READ = VersionedRead(None, None, 0.0)


class _Slot:
    """Admission to the connection pool: waits at most ``timeout`` for one of ``size`` connections.

    redis-py's BlockingConnectionPool does the same, but its condition variable and timeout cost
    about as much per command as the rest of a cache hit; a semaphore costs nothing until it is full.
    """

    __slots__ = ("_semaphore", "_timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self._timeout = timeout

    async def acquire(self) -> None:
        """Take a connection slot, or raise ``BackendUnavailable`` after waiting ``timeout``."""
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # returns at once: a connection is free
            return
        try:
            async with asyncio.timeout(self._timeout):  # not wait_for: on 3.11 it can swallow a cancel
                await self._semaphore.acquire()
        except TimeoutError as exc:
            raise BackendUnavailable(f"no free Redis connection within {self._timeout}s") from exc

    def release(self) -> None:
        self._semaphore.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._semaphore.release()


class RedisBackend(CacheBackend):
    """Versioned entries in Redis, with pooled, time-bounded connections and no retries."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 50,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        pool_timeout: float | None = None,
        version_ttl: float = 7 * _DAY,
    ) -> None:
        if min(socket_timeout, socket_connect_timeout) <= 0 or max_connections < 1:
            raise ValueError("timeouts and max_connections must be positive")
        self.pool = ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._client = Redis.from_pool(self.pool)
        self._slot = _Slot(max_connections, socket_timeout if pool_timeout is None else pool_timeout)
        self.url = url
        self.socket_timeout = socket_timeout
        self.socket_connect_timeout = socket_connect_timeout
        self.max_ttl = version_ttl / 2
        self._version_ttl_ms = int(version_ttl * 1000)
        self._capture = self._client.register_script(CAPTURE)
        self._invalidate = self._client.register_script(INVALIDATE)
        self._store = self._client.register_script(STORE)
        self._read = self._client.register_script(READ)
        self._gets: SharedReads[Hit | Miss] = SharedReads()
        self._reads: SharedReads[VersionedRead] = SharedReads()
        self.channel = ""
        """Where invalidations are published: ``<prefix>:invalidations`` once bound to a prefix."""
        self.origin = secrets.token_hex(8)
        """Identifies this backend's own messages on the channel."""

    def bind_prefix(self, prefix: str) -> None:
        self.channel = f"{prefix}:invalidations"

    async def get(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        return await self._gets.read(key, version_keys, self._mget)

    async def read(self, key: str, version_keys: tuple[str, ...]) -> VersionedRead:
        """The entry (if current), the current versions and the entry's remaining TTL, in one round trip.

        For per-process copies: a copy made from it must not outlive the entry. Shared like ``get``.
        """
        return await self._reads.read(key, version_keys, self._read_versioned)

    async def _mget(self, key: str, version_keys: tuple[str, ...]) -> Hit | Miss:
        slot = self._slot
        await slot.acquire()
        try:
            # decode_responses is off, so every value is bytes or None.
            values = cast("list[bytes | None]", await self._client.mget(key, *version_keys))
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis MGET failed: {exc!r}") from exc
        finally:
            slot.release()
        versions = tuple(values[1:])
        if None in versions:
            return MISS
        found = _entry(values[0], version_keys, versions)
        return Miss(versions) if found is None else found

    async def _read_versioned(self, key: str, version_keys: tuple[str, ...]) -> VersionedRead:
        try:
            async with self._slot:
                values = cast("list[bytes | int | None]", await self._read(keys=[key, *version_keys]))
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis read failed: {exc!r}") from exc
        versions = tuple(values[2:])
        if None in versions:
            return _NO_READ
        found = _entry(cast("bytes | None", values[0]), version_keys, versions)
        if found is None:
            return VersionedRead(None, versions, 0.0)
        return VersionedRead(found, versions, max(0, cast(int, values[1])) / 1000)

    async def capture(self, clock_key: str, version_keys: tuple[str, ...]) -> Versions:
        try:
            async with self._slot:
                versions = await self._capture(keys=[clock_key, *version_keys], args=[self._version_ttl_ms])
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis version capture failed: {exc!r}") from exc
        return tuple(versions)

    async def set(
        self,
        *,
        namespace: str,
        key: str,
        version_keys: tuple[str, ...],
        versions: Versions,
        value: Hit,
        ttl: float,
    ) -> None:
        await self.store(key, version_keys, versions, value, ttl)

    async def store(
        self, key: str, version_keys: tuple[str, ...], versions: Versions, value: Hit, ttl: float
    ) -> bool:
        """``set``, returning True if the entry was stored (its versions were still current)."""
        metadata = _metadata(version_keys, versions)
        blob = b"".join((_HEADER.pack(value.fmt, len(metadata)), metadata, value.data))
        args: list[bytes | int] = [blob, max(1, int(ttl * 1000)), self._version_ttl_ms]
        args.extend(cast("tuple[bytes, ...]", versions))
        try:
            async with self._slot:
                stored = await self._store(keys=[key, *version_keys], args=args)
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis store failed: {exc!r}") from exc
        return bool(stored)

    async def invalidate(self, clock_key: str, version_keys: tuple[str, ...]) -> None:
        args: list[int | str] = [self._version_ttl_ms, self.channel, self.origin]
        try:
            async with self._slot:
                await self._invalidate(keys=[clock_key, *version_keys], args=args)
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis invalidation failed: {exc!r}") from exc

    async def ping(self) -> None:
        try:
            async with self._slot:
                await self._client.ping()
        except _ERRORS as exc:
            raise BackendUnavailable(f"redis PING failed: {exc!r}") from exc

    async def close(self) -> None:
        await self._client.aclose()
