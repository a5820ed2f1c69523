"""Outage recovery with real processes, as users run it: one API worker only writes, another only reads.

Redis goes away while the writer keeps committing and invalidating (its invalidations fail, then are
skipped by its open circuit), and comes back: frozen (a black-holed proxy; Redis keeps every entry)
or restarted empty (a private server). The write-only process makes no read, so nothing but its
background repair can bump the epoch. Afterwards, once the recovery bound has passed, no read may
return a value older than one committed a bound earlier; the writer itself must be using the cache
again. Readers run in both flavours: Redis only, and tiered (L1 + Redis).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.cache.private_redis import PrivateRedis
from tests.cache.workers import results, stale_reads, start_worker
from tests.tcp_proxy import BLACK_HOLE, TcpProxy

pytestmark = [pytest.mark.redis, pytest.mark.slow]

STARTUP = 2.5  # seconds for the workers to import and connect before the first phase
NORMAL = 1.5
OUTAGE = 3.0  # longer than the breakers' reset_timeout: every circuit opens and must recover
WRITING_AFTER = 1.5
READING_AFTER = 2.0
SOCKET_TIMEOUT = 0.2
REPAIR_INTERVAL = 0.2
COHERENCE_WINDOW = 0.05
# How long after Redis is back (or after a write) a read may still return an older value: one repair
# attempt that may still be waiting for its timeout, the next one, the L1 window, and slack for a
# busy machine. A correctness bound with room to spare, not a speed target.
RECOVERY_BOUND = 1.0


def configs(
    cache_url: str, db_url: str, prefix: str, start_at: float, *, tiered_writer: bool
) -> list[dict[str, Any]]:
    writes_end = start_at + NORMAL + OUTAGE + WRITING_AFTER
    end_at = writes_end + READING_AFTER
    common = {
        "cache_url": cache_url,
        "db_url": db_url,
        "prefix": prefix,
        "socket_timeout": SOCKET_TIMEOUT,
        "failure_threshold": 2,
        "reset_timeout": 1.0,
        "repair_interval": REPAIR_INTERVAL,
        "coherence_window": COHERENCE_WINDOW,
        "start_at": start_at,
        "end_at": end_at,
    }
    writer = {**common, "tiered": tiered_writer, "stop_writing_at": writes_end, "interval": 0.02}
    reader = {**common, "readers": 4, "pause": 0.002, "load_delay": 0.003}
    return [writer, {**reader, "tiered": False}, {**reader, "tiered": True}]


async def run_outage(
    cache_url: str,
    db_url: str,
    prefix: str,
    *,
    begin: Callable[[], None],
    end: Callable[[], None],
    tiered_writer: bool,
) -> tuple[list[dict[str, Any]], float, float]:
    start_at = time.monotonic() + STARTUP
    writer, plain, tiered = configs(cache_url, db_url, prefix, start_at, tiered_writer=tiered_writer)
    processes = [
        await start_worker("writer", writer),
        await start_worker("reader", plain),
        await start_worker("reader", tiered),
    ]
    try:
        await asyncio.sleep(start_at + NORMAL - time.monotonic())
        began = time.monotonic()
        begin()
        await asyncio.sleep(start_at + NORMAL + OUTAGE - time.monotonic())
        end()
        ended = time.monotonic()
    finally:
        outcome = await results(*processes)
    return outcome, began, ended


def check(outcome: list[dict[str, Any]], began: float, ended: float) -> None:
    writer, *readers = outcome
    writes = writer["writes"]
    assert any(not ok for _, committed, _, ok in writes if began <= committed <= ended), (
        "no write met the outage"
    )
    final = writes[-1][0]
    last_commit = writes[-1][1]
    for reader, flavour in zip(readers, ("redis", "tiered"), strict=True):
        stale = stale_reads(reader, writes, bound=RECOVERY_BOUND, excluded=(began, ended + RECOVERY_BOUND))
        during = len(stale_reads(reader, writes, bound=RECOVERY_BOUND, excluded=(0.0, 0.0))) - len(stale)
        print(f"{flavour} reader: {len(reader['starts'])} reads, {during} stale during the outage + bound")
        assert stale == [], f"{flavour} reader: {len(stale)} stale reads after recovery, first {stale[:5]}"
        after = [
            value
            for started, value in zip(reader["starts"], reader["values"], strict=True)
            if started > last_commit + RECOVERY_BOUND
        ]
        assert len(after) > 100, flavour
        assert set(after) == {final}, flavour
        assert reader["serving_from_cache"] is True, flavour
        assert reader["stats"]["items"]["hits"] > 0, flavour
    assert all(ok for _, committed, _, ok in writes if committed > ended + RECOVERY_BOUND)
    assert writer["serving_from_cache"] is True  # recovered although it never read


async def test_a_frozen_redis_that_kept_its_data(redis_url: str, prefix: str) -> None:
    parts = urlsplit(redis_url)
    with TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379), outage=BLACK_HOLE) as proxy:
        outcome, began, ended = await run_outage(
            f"redis://127.0.0.1:{proxy.port}/0",
            redis_url,
            prefix,
            begin=proxy.cut,
            end=proxy.restore,
            tiered_writer=False,
        )
    check(outcome, began, ended)


async def test_a_redis_restarted_empty(redis_url: str, prefix: str) -> None:
    server = PrivateRedis()
    server.start()
    try:
        outcome, began, ended = await run_outage(
            server.url, redis_url, prefix, begin=server.stop, end=server.start, tiered_writer=True
        )
    finally:
        server.stop()
    check(outcome, began, ended)
