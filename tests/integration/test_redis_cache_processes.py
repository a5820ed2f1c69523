"""Two API processes sharing PostgreSQL and the Redis cache, as a deployment runs them.

A write in one process is never read stale from the other, and with Redis hung the routes answer
from the database (no 500, no wait beyond the Redis timeout) and the missed invalidations never
bring a pre-outage entry back once Redis returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server
from tests import services
from tests.charges.helpers import charge_payload
from tests.tcp_proxy import BLACK_HOLE, TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CHARGES = "/api/v1/charges"
CACHE_STATS = "/api/v1/cache/stats"
WRITES = 20
REDIS_TIMEOUT_SECONDS = 0.2
# Every request must end well within this: a hang guard, far above the Redis timeout.
CLIENT_TIMEOUT_SECONDS = 30.0


@pytest.fixture
def database() -> Iterator[str]:
    """A migrated PostgreSQL database of the test's own, dropped afterwards."""
    name, url = services.create_postgres_database()
    try:
        upgrade(load_settings(database_url=url))
        yield url
    finally:
        services.drop_postgres_database(name)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of the test's own on the shared Redis; its keys are deleted afterwards."""
    with services.own_redis_prefix("erp_cache_processes", separator="") as (_url, prefix):
        yield prefix


def environment(tmp_path: Path, database: str, prefix: str, redis_url: str) -> dict[str, str]:
    return {
        "ERP_DATABASE_URL": database,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_CACHE_BACKEND": "redis",
        "ERP_REDIS_URL": redis_url,
        "ERP_REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT_SECONDS),
        "ERP_CACHE_PREFIX": prefix,
        "ERP_RATE_LIMIT_PREFIX": f"{prefix}:ratelimit",
        "ERP_ACCESS_LOG": "false",
    }


def charge_stats(http: httpx.Client) -> dict[str, int]:
    """The counters of the charges namespace in the cache of the process ``http`` talks to."""
    response = http.get(CACHE_STATS)
    assert response.status_code == 200, response.text
    stats: dict[str, int] = response.json().get("charges", {})
    return stats


COHERENCE_WINDOW_SECONDS = 0.05
"""The tiered cache's window (ERP_CACHE_COHERENCE_WINDOW_MS, its default): how long another process's
L1 may still serve an entry after the invalidation completed (``cache/backends/tiered.py`` (b))."""


@pytest.mark.parametrize("l1", ["off", "on"])
def test_a_write_in_one_process_is_never_read_stale_from_the_other(
    tmp_path: Path, database: str, prefix: str, l1: str
) -> None:
    """Redis alone: a read after the write's answer is never stale. With the per-process L1 (the
    default with Redis) the promise is the coherence window: the other process may serve the version
    just replaced for at most the window after the write's answer, never longer, never an older one."""
    env = {**environment(tmp_path, database, prefix, services.REDIS_URL), "ERP_CACHE_L1": l1}
    with (
        running_server(env) as writer_server,
        running_server(env) as reader_server,
        httpx.Client(base_url=writer_server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as writer,
        httpx.Client(base_url=reader_server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as reader,
    ):
        created = writer.post(CHARGES, json=charge_payload(1))
        assert created.status_code == 201, created.text
        url, etag = created.headers["location"], created.headers["etag"]
        for _ in range(2):  # the second read comes from the cache the writer must now invalidate
            assert reader.get(url).headers["etag"] == etag
        assert charge_stats(reader)["hits"] >= 1

        for n in range(WRITES):
            line = f"W{n}"
            replaced = etag
            written = writer.patch(url, json={"line": line}, headers={"If-Match": etag})
            answered = time.monotonic()
            assert written.status_code == 200, written.text
            etag = written.headers["etag"]
            fresh = 0
            while fresh < 2:  # a miss that caches the new version, then a hit on it
                asked = time.monotonic()
                read = reader.get(url)
                assert read.status_code == 200, read.text
                if read.headers["etag"] == etag:
                    assert read.json() == written.json()
                    fresh += 1
                    continue
                assert l1 == "on", f"write {n}: the reader served a stale version"
                assert read.headers["etag"] == replaced, f"write {n}: the reader served an older version"
                lag = asked - answered
                assert lag < COHERENCE_WINDOW_SECONDS, f"write {n}: still stale {lag * 1000:.0f} ms after it"
            listed = reader.get(CHARGES, params={"line": line})
            assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
        reads = charge_stats(reader)
        assert reads["hits"] >= WRITES, reads  # the reader did serve from the shared cache
        assert reads["errors"] == 0, reads
    for server in (writer_server, reader_server):
        assert "Traceback" not in server.process.log()


def test_with_redis_hung_the_routes_answer_from_the_database(
    tmp_path: Path, database: str, prefix: str
) -> None:
    target = urlsplit(services.REDIS_URL)
    with TcpProxy((target.hostname or "127.0.0.1", target.port or 6379), outage=BLACK_HOLE) as proxy:
        env = environment(tmp_path, database, prefix, f"redis://127.0.0.1:{proxy.port}/0")
        with (
            running_server(env) as server,
            httpx.Client(base_url=server.base_url, timeout=CLIENT_TIMEOUT_SECONDS) as http,
        ):
            created = http.post(CHARGES, json=charge_payload(1))
            assert created.status_code == 201, created.text
            url = created.headers["location"]
            before = [http.get(url) for _ in range(2)]  # cached in Redis at version 1
            assert [r.headers["etag"] for r in before] == [created.headers["etag"]] * 2

            proxy.cut()  # Redis accepts connections and never answers
            assert _ok(http.get(url)).json() == created.json()
            patched = _ok(http.patch(url, json={"line": "L9"}))
            assert patched.json()["version"] == 2
            for _ in range(3):
                read = _ok(http.get(url))
                assert read.headers["etag"] == patched.headers["etag"]
                assert read.json() == patched.json()
            listed = _ok(http.get(CHARGES, params={"line": "L9"}))
            assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
            assert _ok(http.get("/health")).status_code == 200
            assert charge_stats(http)["errors"] >= 1  # the reads did try Redis, and fell back

            # Redis comes back still holding version 1, whose invalidation it never got.
            proxy.restore()
            hits = charge_stats(http)["hits"]
            deadline = time.monotonic() + 60  # a hang guard: the breaker probes Redis within seconds
            while charge_stats(http)["hits"] == hits:  # until the cache serves again
                read = _ok(http.get(url))
                assert read.headers["etag"] == patched.headers["etag"], "a pre-outage entry came back"
                assert time.monotonic() < deadline, "the cache never served again after Redis came back"
                time.sleep(0.05)
        assert "Traceback" not in server.process.log()


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response
