"""The invalidation channel of a tiered backend: one subscriber connection per process, with heartbeats.

What it promises its owner: while ``time.monotonic() < fresh_until``, every invalidation that
completed (anywhere) more than ``window`` seconds ago has been handed to ``on_invalidate``. And
``unhandled()`` tells whether bytes of the channel other than answers to heartbeats have reached
this process and wait to be handled: a message Redis has sent here is either handled or seen by that
check, so an owner that checks it never runs ahead of what has arrived. (An event loop reads every
ready socket before it runs the tasks those reads woke, so a request that arrived with, or after, a
message finds it read.) A heartbeat's answer carries no invalidation: one waiting to be handled only
leaves ``fresh_until`` where it was. Under load an answer arrives every ``window / 4`` seconds and
may wait a whole turn of a busy loop, so counting those would turn a quarter of the reads away from
the L1 for nothing (measured: 22-33 % of the reads of two busy workers).

Why that holds: the invalidation script publishes the version keys it moved in the same atomic
step, so once an invalidation has completed its message is queued for every subscriber. Every
``window / 4`` seconds this subscriber sends ``PING <send time>`` on its own connection; Redis
answers on that connection in order, so the PONG for a PING sent at ``s`` comes after every message
published before Redis ran that PING, i.e. after every invalidation completed by ``s``; and messages
are handled in the order they arrive. After handling that PONG, the channel is fresh until
``s + window``. A hung or slow Redis, a lagging process or a dead connection therefore makes the
channel stale within ``window``, never silently behind.

A lost connection is never resumed: the subscriber opens a new one and, once subscribed, calls
``on_reset`` (messages may have been missed in between, so whatever depended on them is dropped)
before its heartbeats make the channel fresh again. No PONG for ``give_up_after`` seconds also
counts as lost. Reconnection attempts are bounded by the socket timeouts and spaced by a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

__all__ = ["InvalidationChannel", "holds_messages"]

_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 2.0
# Complete answers to heartbeats, and nothing else: on a subscribed RESP2 connection the answer to
# ``PING <payload>`` is the array ["pong", <payload>], and our payloads (send times) hold no CR.
_HEARTBEAT_ANSWERS = re.compile(rb"(?:\*2\r\n\$4\r\npong\r\n\$\d+\r\n[^\r]*\r\n)+")


def holds_messages(arrived: bytes | bytearray) -> bool:
    """Whether bytes read from the subscriber connection hold anything but complete heartbeat
    answers: a message, or the first bytes of any reply (conservatively, a partial answer too)."""
    return bool(arrived) and _HEARTBEAT_ANSWERS.fullmatch(arrived) is None


class _Lost(Exception):
    """The subscription can no longer be trusted (no heartbeat, unexpected reply)."""


class InvalidationChannel:
    """Subscribes to one channel, hands each foreign message's version keys to ``on_invalidate``.

    Messages are ``<origin>\\n<key>\\x1f<key>...``; those carrying ``origin`` (this process's own
    backend, which applied them already) are skipped. ``start(channel)`` is called lazily from an
    event loop; ``close()`` ends it.
    """

    def __init__(
        self,
        url: str,
        *,
        window: float,
        socket_timeout: float,
        socket_connect_timeout: float,
        on_invalidate: Callable[[list[str]], None],
        on_reset: Callable[[], None],
        origin: str = "",
    ) -> None:
        if window <= 0:
            raise ValueError("the coherence window must be positive")
        self._pool = ConnectionPool.from_url(
            url,
            max_connections=1,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(NoBackoff(), 0),
            protocol=2,  # RESP2: messages and PONGs arrive as replies, in order, on this connection
        )
        self.window = window
        self._interval = window / 4
        self._socket_timeout = socket_timeout
        self.give_up_after = max(1.0, 4 * socket_timeout, 4 * window)
        self._on_invalidate = on_invalidate
        self._on_reset = on_reset
        self._origin = origin.encode()
        self._task: asyncio.Task[None] | None = None
        self._arrived: bytearray | None = None
        """The buffer of the subscriber connection's stream: read by the event loop, not yet handled."""
        self._closing = False
        self.fresh_until = 0.0
        """``time.monotonic()`` value until which the channel is known to be up to date."""
        self.subscriptions = 0
        self.losses = 0
        self.messages = 0

    @property
    def started(self) -> bool:
        return self._task is not None

    def unhandled(self) -> bool:
        """Whether bytes of the channel that may hold a message have reached this process and are
        not handled yet (``holds_messages``): the check redis-py makes of its own connection before
        serving from its client-side cache, less the heartbeats' answers. Without a subscription,
        False (``fresh_until`` tells then)."""
        arrived = self._arrived
        return arrived is not None and len(arrived) > 0 and holds_messages(arrived)

    def start(self, channel: str) -> None:
        """Subscribe to ``channel`` in the background (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(channel))

    async def close(self) -> None:
        # The flag, too: redis-py sends with asyncio.wait_for, which on Python 3.11 can swallow the
        # cancellation if it lands as a send completes; the loops then end at their next turn.
        self._closing = True
        self.fresh_until = 0.0
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._pool.aclose()

    async def _run(self, channel: str) -> None:
        backoff = _MIN_BACKOFF
        while not self._closing:
            subscribed = self.subscriptions
            try:
                await self._session(channel)
            except (RedisError, OSError, _Lost):
                self.losses += 1
            if self.subscriptions != subscribed:
                backoff = _MIN_BACKOFF  # it worked for a while: retry soon
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _session(self, channel: str) -> None:
        connection: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            self._arrived = _arrived_bytes(connection)
            await connection.send_command("SUBSCRIBE", channel)
            reply = await self._read(connection, within=self._socket_timeout)
            if not (isinstance(reply, list) and reply[0] == b"subscribe"):
                raise _Lost(f"unexpected reply to SUBSCRIBE: {reply!r}")
            # Anything published before this point may have been missed.
            self._on_reset()
            self.subscriptions += 1
            await self._listen(connection)
        finally:
            self.fresh_until = 0.0
            self._arrived = None
            self._on_reset()
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect(nowait=True)

    async def _listen(self, connection: AbstractConnection) -> None:
        answered = time.monotonic()  # send time of the newest PING answered (or of the subscription)
        next_ping = 0.0
        while not self._closing:
            now = time.monotonic()
            if now >= next_ping:
                if now - answered > self.give_up_after:
                    raise _Lost(f"no heartbeat for {now - answered:.3f}s")
                await connection.send_command("PING", repr(now))
                next_ping = now + self._interval
            reply = await self._read(connection, within=max(next_ping - time.monotonic(), 0.0005))
            if reply is None:
                continue
            kind = reply[0]
            if kind == b"message":
                origin, _, keys = reply[2].partition(b"\n")
                if origin != self._origin:
                    self.messages += 1
                    self._on_invalidate(keys.decode().split("\x1f"))
            elif kind == b"pong":
                try:
                    sent = float(reply[1])
                except (IndexError, ValueError) as exc:
                    raise _Lost(f"not a heartbeat of ours: {reply!r}") from exc
                answered = max(answered, sent)
                self.fresh_until = max(self.fresh_until, sent + self.window)

    @staticmethod
    async def _read(connection: AbstractConnection, *, within: float) -> list[bytes] | None:
        """The next reply, or None if none arrived ``within`` seconds (the connection stays usable)."""
        reply = await connection.read_response(timeout=within, disconnect_on_error=False)
        if reply is not None and not isinstance(reply, list):
            raise _Lost(f"unexpected reply on the subscriber connection: {reply!r}")
        return reply


def _arrived_bytes(connection: AbstractConnection) -> bytearray | None:
    """The buffer of the ``asyncio.StreamReader`` a redis-py connection reads its replies from: the
    bytes the event loop has read and the reader not yet consumed (one bytearray for the stream's
    life). None if this release of redis-py or Python keeps them elsewhere."""
    stream = getattr(connection, "_reader", None)
    buffer = getattr(stream, "_buffer", None) if isinstance(stream, asyncio.StreamReader) else None
    return buffer if isinstance(buffer, bytearray) else None
