"""The tiered backend in one process, each manager standing for a process of its own (its own
connections and subscriber): hits from memory, invalidations over the channel, the fill race, the
channel down, Redis restarted empty. The same guarantees across real processes: tests/cache/test_coherence.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from cache import CacheManager, RedisBackend, TieredBackend, build_backend
from cache.backends.base import BackendUnavailable, Hit, Miss
from cache.backends.invalidations import holds_messages
from cache.backends.redis import VersionedRead
from cache.serializers import RAW
from tests.cache.private_redis import PrivateRedis
from tests.cache.relay import StallingRelay
from tests.conftest import eventually
from tests.tcp_proxy import BLACK_HOLE, TcpProxy

pytestmark = pytest.mark.redis

WINDOW = 0.05


class Database:
    def __init__(self) -> None:
        self.value = b"old"
        self.loads = 0

    async def load(self) -> bytes:
        self.loads += 1
        return self.value


def tiered(url: str, *, channel_url: str | None = None, window: float = WINDOW) -> TieredBackend:
    l2 = RedisBackend(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return TieredBackend(l2, max_entries=100, coherence_window=window, channel_url=channel_url)


def backend_of(manager: CacheManager) -> TieredBackend:
    backend = manager._backend
    assert isinstance(backend, TieredBackend)
    return backend


async def read(manager: CacheManager, db: Database) -> bytes:
    return await manager.get_or_load("items", "the-item", db.load, tags=["item"])


async def read_through_l1(manager: CacheManager, db: Database) -> bytes:
    """Read until the value sits in this process's L1 (the channel subscribed, the copy made)."""
    backend = backend_of(manager)
    await read(manager, db)
    await eventually(lambda: backend.channel.fresh_until > time.monotonic())
    hits = backend.l1_hits
    value = await read(manager, db)  # fills the L1 from Redis (subscribing cleared it)
    while backend.l1_hits == hits:
        value = await read(manager, db)
    return value


@pytest.fixture
async def managers(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., CacheManager]]:
    made: list[CacheManager] = []

    def make(url: str = redis_url, **kwargs: Any) -> CacheManager:
        manager = CacheManager(tiered(url, **kwargs), prefix=prefix, failure_threshold=100)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.close()


def test_build_backend_gives_a_tiered_backend_when_asked_for_an_l1() -> None:
    backend = build_backend(
        "redis", redis_url="redis://127.0.0.1:1/0", l1_max_entries=5, coherence_window=0.02
    )
    assert isinstance(backend, TieredBackend)
    assert backend.coherence_window == 0.02
    assert backend.l1.max_entries == 5
    assert isinstance(build_backend("redis", redis_url="redis://127.0.0.1:1/0"), RedisBackend)


async def test_hits_are_served_from_process_memory_without_a_round_trip(
    managers: Callable[..., CacheManager],
) -> None:
    db = Database()
    manager = managers()
    backend = backend_of(manager)
    assert await read_through_l1(manager, db) == b"old"
    round_trips = 0
    l2_read = backend.l2.read

    async def counted(key: str, version_keys: tuple[str, ...]) -> VersionedRead:
        nonlocal round_trips
        round_trips += 1
        return await l2_read(key, version_keys)

    backend.l2.read = counted  # type: ignore[method-assign]
    for _ in range(50):
        assert await read(manager, db) == b"old"

    assert round_trips <= 1  # a heartbeat may be late on a busy machine: then one read goes to Redis
    assert db.loads == 1


async def test_an_invalidation_is_never_served_from_the_l1_of_the_process_that_completed_it(
    managers: Callable[..., CacheManager],
) -> None:
    db = Database()
    manager = managers()
    assert await read_through_l1(manager, db) == b"old"

    db.value = b"new"
    assert await manager.invalidate_tags(["item"]) is True

    assert await read(manager, db) == b"new"  # at once: no waiting for its own message


async def test_another_processs_invalidation_reaches_the_l1_over_the_channel(
    managers: Callable[..., CacheManager],
) -> None:
    db = Database()
    writer, reader = managers(), managers()
    assert await read_through_l1(reader, db) == b"old"
    messages = backend_of(reader).channel.messages

    db.value = b"new"
    assert await writer.invalidate_tags(["item"]) is True

    await eventually(lambda: backend_of(reader).channel.messages > messages)
    assert await read(reader, db) == b"new"


async def test_a_request_arriving_with_an_invalidation_message_is_not_served_the_copy_it_covers(
    redis_url: str, prefix: str
) -> None:
    """A request read in the same turn of the event loop as another process's invalidation message,
    and handled first (its socket was ready first), must not get the L1 copy the message covers: the
    loop has read the message, the subscriber has not handled it yet (``unhandled()``).

    Reproduced exactly: the reader's loop is held (this test blocks it) while a request comes in on a
    socket, then another process invalidates; the request's handler is a task of its own, as in
    uvicorn. The window is long here (2 s), so that the channel stays fresh throughout.
    """
    db = Database()
    reader = CacheManager(
        TieredBackend(RedisBackend(redis_url, socket_timeout=0.5), coherence_window=2.0), prefix=prefix
    )
    backend = backend_of(reader)
    try:
        assert await read_through_l1(reader, db) == b"old"
        loop = asyncio.get_running_loop()
        served: asyncio.Future[bytes] = loop.create_future()

        class Request(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                task = loop.create_task(read(reader, db))
                task.add_done_callback(lambda done: served.set_result(done.result()))

        ours, theirs = socket.socketpair()
        transport, _ = await loop.create_connection(Request, sock=ours)
        try:
            db.value = b"new"
            theirs.send(b"GET")  # the request is in first ...

            async def invalidate_elsewhere() -> None:
                writer = CacheManager(tiered(redis_url), prefix=prefix)
                try:
                    assert await writer.invalidate_tags(["item"]) is True
                finally:
                    await writer.close()

            # ... then another process's invalidation, its message sent before this loop turns again.
            elsewhere = threading.Thread(target=asyncio.run, args=(invalidate_elsewhere(),))
            elsewhere.start()
            elsewhere.join()  # blocking: this loop does not turn meanwhile
            time.sleep(0.01)  # noqa: ASYNC251 -- on purpose: the message lands while this loop stands
            assert backend.channel.fresh_until > time.monotonic()
            messages = backend.channel.messages

            assert await asyncio.wait_for(served, timeout=5) == b"new"
            assert backend.channel.messages == messages + 1  # handled by now, not before the request
        finally:
            transport.close()
            theirs.close()
    finally:
        await reader.close()


async def test_a_heartbeat_answer_waiting_to_be_handled_does_not_turn_a_read_away_from_the_l1(
    managers: Callable[..., CacheManager],
) -> None:
    """The loop has read a heartbeat's answer (PONG) and the subscriber has not handled it yet: it
    carries no invalidation, so a read in that moment is still served from the L1. Two busy workers
    had a quarter of their reads sent to Redis that way (an answer every window / 4, waiting a turn).

    Reproduced exactly: this task polls at every turn of the loop, so it runs in the turn after the
    loop read the answer and before the subscriber's task, which that read woke. The window is
    400 ms here, so that a busy machine cannot let the channel go stale meanwhile."""
    db = Database()
    manager = managers(window=0.4)
    backend = backend_of(manager)
    assert await read_through_l1(manager, db) == b"old"
    arrived = backend.channel._arrived
    assert arrived is not None
    deadline = time.monotonic() + 5
    while not arrived:  # an answer arrives every window / 4
        assert time.monotonic() < deadline, "no heartbeat answer arrived"
        await asyncio.sleep(0)
    assert arrived.startswith(b"*2\r\n$4\r\npong\r\n")  # only a heartbeat's answer waits
    assert backend.channel.fresh_until > time.monotonic()
    hits, bypassed = backend.l1_hits, backend.l1_bypassed

    assert await read(manager, db) == b"old"

    assert (backend.l1_hits, backend.l1_bypassed) == (hits + 1, bypassed)


@pytest.mark.parametrize(
    ("arrived", "holds"),
    [
        (b"", False),
        (b"*2\r\n$4\r\npong\r\n$12\r\n12345.678901\r\n", False),
        (b"*2\r\n$4\r\npong\r\n$3\r\n1.5\r\n*2\r\n$4\r\npong\r\n$3\r\n2.5\r\n", False),
        # A message, alone or after an answer, whole or in part; a partial answer could be anything yet.
        (b"*3\r\n$7\r\nmessage\r\n$5\r\nc:inv\r\n$4\r\no\nk1\r\n", True),
        (b"*2\r\n$4\r\npong\r\n$3\r\n1.5\r\n*3\r\n$7\r\nmess", True),
        (b"*2\r\n$4\r\npong\r\n$3\r\n1.", True),
        (b"*", True),
    ],
)
def test_only_complete_heartbeat_answers_count_as_holding_no_message(arrived: bytes, holds: bool) -> None:
    # The bytes as Redis sends them to a RESP2 subscriber (PING with an argument while subscribed).
    assert holds_messages(arrived) is holds


async def test_a_copy_read_before_an_invalidation_is_not_kept_when_the_message_lands_first(
    managers: Callable[..., CacheManager],
) -> None:
    db = Database()
    writer, reader = managers(), managers()
    assert await read_through_l1(reader, db) == b"old"
    backend = backend_of(reader)
    backend.l1.clear()  # the next read goes to Redis and makes a copy
    gate = asyncio.Event()
    answered = asyncio.Event()
    l2_read = backend.l2.read

    async def slow_read(key: str, version_keys: tuple[str, ...]) -> VersionedRead:
        found = await l2_read(key, version_keys)  # Redis answers with the old entry...
        answered.set()
        await gate.wait()  # ...and the answer is handled only after the invalidation message
        return found

    backend.l2.read = slow_read  # type: ignore[method-assign]
    before = asyncio.ensure_future(read(reader, db))
    await answered.wait()
    messages = backend.channel.messages
    db.value = b"new"
    assert await writer.invalidate_tags(["item"]) is True
    await eventually(lambda: backend.channel.messages > messages)
    gate.set()
    backend.l2.read = l2_read  # type: ignore[method-assign]

    assert await before == b"old"  # it started before the invalidation: allowed
    assert backend.l1.size[0] == 0  # the copy was refused
    assert await read(reader, db) == b"new"


async def test_a_load_that_read_before_an_invalidation_is_not_kept(
    managers: Callable[..., CacheManager],
) -> None:
    db = Database()
    writer, reader = managers(), managers()
    assert await read_through_l1(reader, db) == b"old"
    assert await writer.invalidate_tags(["item"]) is True  # the reader's next read is a miss
    await eventually(lambda: backend_of(reader).channel.messages > 0)
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_load() -> bytes:
        value = db.value  # reads the data...
        started.set()
        await release.wait()  # ...and returns it after the next invalidation
        return value

    db.value = b"middle"
    loading = asyncio.ensure_future(reader.get_or_load("items", "the-item", slow_load, tags=["item"]))
    await started.wait()
    db.value = b"new"
    assert await writer.invalidate_tags(["item"]) is True
    await eventually(lambda: backend_of(reader).channel.messages > 1)
    release.set()

    assert await loading == b"middle"
    assert backend_of(reader).l1.size[0] == 0
    assert await read(reader, db) == b"new"


@pytest.fixture
def channel_proxy(redis_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(redis_url)
    with TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379), outage=BLACK_HOLE) as proxy:
        yield proxy


async def test_with_the_channel_lagging_the_l1_is_bypassed_and_redis_reads_stay_version_checked(
    managers: Callable[..., CacheManager], channel_relay: StallingRelay
) -> None:
    db = Database()
    writer = managers()
    reader = managers(channel_url=f"redis://127.0.0.1:{channel_relay.port}/0")
    backend = backend_of(reader)
    assert await read_through_l1(reader, db) == b"old"

    channel_relay.stall()  # heartbeats (and messages) stop arriving; the connection stays open
    await eventually(lambda: backend.channel.fresh_until < time.monotonic())  # within the window
    db.value = b"new"
    assert await writer.invalidate_tags(["item"]) is True
    assert backend.l1.size[0] == 1  # the old copy is still there: its invalidation is held back

    bypassed = backend.l1_bypassed
    assert await read(reader, db) == b"new"  # at once: from Redis, where versions are checked
    assert backend.l1_bypassed > bypassed

    channel_relay.resume()  # the held-back message arrives, then the heartbeats
    await eventually(lambda: backend.channel.fresh_until > time.monotonic())
    assert backend.channel.subscriptions == 1  # the same subscription: nothing was lost
    assert await read_through_l1(reader, db) == b"new"


async def test_with_the_channel_cut_the_l1_is_dropped_and_refilled_after_subscribing_again(
    managers: Callable[..., CacheManager], channel_proxy: TcpProxy
) -> None:
    db = Database()
    writer = managers()
    reader = managers(channel_url=f"redis://127.0.0.1:{channel_proxy.port}/0")
    backend = backend_of(reader)
    assert await read_through_l1(reader, db) == b"old"

    channel_proxy.cut()  # the subscriber's connection is dropped; new ones hang
    await eventually(lambda: backend.channel.losses >= 1)
    assert backend.channel.fresh_until < time.monotonic()
    db.value = b"new"
    assert await writer.invalidate_tags(["item"]) is True  # a message the reader never gets
    assert await read(reader, db) == b"new"

    channel_proxy.restore()
    await eventually(lambda: backend.channel.subscriptions >= 2)
    assert await read_through_l1(reader, db) == b"new"


async def test_after_redis_restarted_empty_no_copy_from_before_is_served(prefix: str) -> None:
    server = PrivateRedis()
    server.start()
    db = Database()
    manager = CacheManager(tiered(server.url), prefix=prefix, failure_threshold=100)
    backend = backend_of(manager)
    plain = RedisBackend(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    version_keys = manager.version_keys(["other"])
    try:
        assert await read_through_l1(manager, db) == b"old"
        captured_before = await plain.capture(f"{prefix}:clock", version_keys)

        server.stop()
        db.value = b"new"  # changed while Redis was away; nobody could invalidate
        await eventually(lambda: backend.channel.fresh_until < time.monotonic())
        server.start()
        await eventually(lambda: backend.channel.subscriptions >= 2)

        assert await read(manager, db) == b"new"  # the L1 was cleared on subscribing again
        with contextlib.suppress(BackendUnavailable):
            await plain.ping()  # its pooled connection died with the server: the next one is new
        # A store that captured its versions before the restart does not land after it.
        await plain.set(
            namespace="items",
            key=f"{prefix}:e:items:late",
            version_keys=version_keys,
            versions=captured_before,
            value=Hit(RAW, b"stale"),
            ttl=60,
        )
        assert isinstance(await plain.get(f"{prefix}:e:items:late", version_keys), Miss)
        after = await plain.capture(f"{prefix}:clock", version_keys)
        assert all(
            int(cast(bytes, new)) > int(cast(bytes, old))
            for new, old in zip(after, captured_before, strict=True)
        )
    finally:
        await manager.close()
        await plain.close()
        server.stop()
