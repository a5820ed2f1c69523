"""API keys: stored as digests, looked up cheaply, revoked within the cache TTL, bootstrapped once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from erp_api.db import create_engine, create_session_factory
from erp_api.errors import Conflict, NotFound
from erp_api.http import API_PREFIX as API
from erp_api.security.key_store import Ensured, KeyStore
from erp_api.security.keys import PREFIX_LENGTH, generate_key
from erp_api.security.models import ApiKey
from erp_api.security.principal import Principal
from erp_api.security.roles import Role
from erp_api.settings import load_settings
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Clock, Serve, http, new_key


class CountingSessions:
    """A session factory that counts the sessions opened through it (= database round trips here)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.opened = 0

    def __call__(self) -> AsyncSession:
        self.opened += 1
        return self._sessions()

    def begin(self) -> Any:
        self.opened += 1
        return self._sessions.begin()


class KeyQueries:
    """Counts the statements that read the api_keys table (a SQLAlchemy event listener)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._executed)

    def _executed(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement:
            self.count += 1


class Lookups:
    """Stands in for a store's database lookup: counts calls, and can hold answers or fail.

    An answer is read first and then held at ``gate``: a held answer is a slow database, and may be
    stale by the time it arrives.
    """

    def __init__(self, keys: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self._read = keys._lookup
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.failure: Exception | None = None
        self.answered = asyncio.Event()
        """Set once a lookup has read its answer (before the gate)."""
        self._running: list[asyncio.Task[Any]] = []
        self._keys = keys
        monkeypatch.setattr(keys, "_lookup", self)

    async def __call__(self, prefix: str, digest: str) -> Principal | None:
        self.calls += 1
        task = asyncio.current_task()
        assert task is not None
        self._running.append(task)
        if self.failure is not None:
            raise self.failure
        principal = await self._read(prefix, digest)
        self.answered.set()
        await self.gate.wait()
        return principal

    async def finish(self) -> None:
        """Let every held lookup answer, and wait until the store has let go of each: its bookkeeping
        of a lookup (the running flight) ends in the task's done callbacks, a loop turn or more after
        the lookup itself (a failed refresh took one turn more on Python 3.12 than on 3.11)."""
        self.gate.set()
        await asyncio.sleep(0)  # a lookup started a moment ago runs up to its first wait, so is listed
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        for _turn in range(100):
            if not self._keys._tasks:
                return
            await asyncio.sleep(0)
        raise AssertionError("the store still runs a lookup after every lookup has answered")


@pytest.fixture
async def engine(sqlite_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(load_settings(database_url=sqlite_database))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


def store(sessions: Any, ttl: float = 60.0, clock: Clock | None = None) -> KeyStore:
    if clock is None:
        return KeyStore(sessions, cache_ttl_seconds=ttl, cache_max_entries=100)
    return KeyStore(sessions, cache_ttl_seconds=ttl, cache_max_entries=100, clock=clock)


async def test_a_key_is_stored_only_as_its_sha256_digest(sessions: async_sessionmaker[AsyncSession]) -> None:
    row, key = await store(sessions).create(role=Role.OPERATOR, name="line 3 tablet")
    async with sessions() as session:
        stored = (await session.scalars(select(ApiKey).where(ApiKey.id == row.id))).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.prefix == key[:PREFIX_LENGTH]
    assert key not in str([stored.key_hash, stored.prefix, stored.name, stored.role])


async def test_authenticate_finds_the_key_and_its_role(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = store(sessions)
    row, key = await keys.create(role=Role.QUALITY_MANAGER, name="qm")
    principal = await keys.authenticate(key)
    assert principal is not None
    assert (principal.key_id, principal.name, principal.role) == (row.id, "qm", Role.QUALITY_MANAGER)
    assert await keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None


async def test_repeated_lookups_are_served_from_memory(sessions: async_sessionmaker[AsyncSession]) -> None:
    _row, key = await store(sessions).create(role=Role.VIEWER, name="v")
    counting = CountingSessions(sessions)
    keys = store(counting)
    unknown = generate_key()
    for _ in range(20):
        assert await keys.authenticate(key) is not None
        assert await keys.authenticate(unknown) is None
    # One lookup for the key and one for the unknown key: repeats never reach the database.
    assert counting.opened == 2


async def test_values_that_cannot_be_keys_never_reach_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    counting = CountingSessions(sessions)
    keys = store(counting)
    for value in ("", "short", "x" * 300, "erp_with a space in it but long enough to pass"):
        assert await keys.authenticate(value) is None
    assert counting.opened == 0


async def test_revoke_by_prefix_and_an_ambiguous_prefix_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keys = store(sessions)
    shared = "erp_SAMEPREF"
    await keys.create(role=Role.VIEWER, name="a", key=shared + "a" * 40)
    await keys.create(role=Role.VIEWER, name="b", key=shared + "b" * 40)
    with pytest.raises(Conflict):
        await keys.revoke(shared)
    row, _key = await keys.create(role=Role.VIEWER, name="c")
    assert (await keys.revoke(row.prefix)).id == row.id
    with pytest.raises(NotFound):
        await keys.revoke(row.prefix)
    with pytest.raises(NotFound):
        await keys.revoke(str(2**64))


async def test_a_revoked_key_is_refused_once_the_cache_ttl_has_passed(serve: Serve) -> None:
    async with serve(auth_cache_ttl_seconds=0.3) as app:
        key = await new_key(app, "viewer")
        async with http(app, key) as client:
            assert (await client.get(f"{API}/charges")).status_code == 200
            # Revoked elsewhere (the command line, another worker): this worker trusts its cache until the TTL.
            other_worker = KeyStore(app.state.resources.sessions, cache_ttl_seconds=0, cache_max_entries=1)
            await other_worker.revoke(key[:PREFIX_LENGTH])
            assert (await client.get(f"{API}/charges")).status_code == 200
            await asyncio.sleep(0.35)
            response = await client.get(f"{API}/charges")
            assert_problem(response, 401)
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_concurrent_requests_for_an_expired_key_share_one_database_query(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    row, key = await keys.create(role=Role.OPERATOR, name="line 3 tablet")
    queries = KeyQueries(engine)
    principals = await asyncio.gather(*(keys.authenticate(key) for _ in range(100)))
    assert queries.count == 1, "a cold key: one query for 100 concurrent requests"
    clock.now += 10
    principals += await asyncio.gather(*(keys.authenticate(key) for _ in range(100)))
    assert queries.count == 2, "an expired key: one query for 100 concurrent requests"
    assert {principal.key_id if principal else None for principal in principals} == {row.id}


async def test_requests_arriving_over_the_http_stack_after_expiry_cost_one_query(serve: Serve) -> None:
    async with serve(auth_cache_ttl_seconds=0.3) as app:
        key = await new_key(app, "viewer")
        queries = KeyQueries(app.state.resources.engine)
        async with http(app, key) as client:
            assert (await client.get(f"{API}/charges")).status_code == 200
            await asyncio.sleep(0.35)
            before = queries.count
            responses = await asyncio.gather(*(client.get(f"{API}/charges") for _ in range(100)))
    assert [response.status_code for response in responses] == [200] * 100
    assert queries.count - before == 1


async def test_a_key_in_use_is_refreshed_ahead_so_no_request_waits_for_the_database(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    row, key = await keys.create(role=Role.VIEWER, name="dashboard")
    lookups = Lookups(keys, monkeypatch)
    await keys.authenticate(key)
    await lookups.finish()
    waited = 0
    for step in range(1, 121):  # a minute of use, every half second, with a database slow to answer
        clock.now += 0.5
        lookups.gate.clear()
        requests = [asyncio.create_task(keys.authenticate(key)) for _ in range(5)]
        await asyncio.sleep(0)  # one turn of the loop: answers from memory are complete now
        waited += sum(not request.done() for request in requests)
        await lookups.finish()
        principals = await asyncio.gather(*requests)
        assert all(principal is not None and principal.key_id == row.id for principal in principals), step
    assert waited == 0
    # The first lookup, then one refresh per 8 s of use (at 80 % of the 10 s TTL), shared by its requests.
    assert lookups.calls == 1 + 7


async def test_a_refresh_that_finds_the_key_revoked_stops_it_within_the_ttl(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    _row, key = await keys.create(role=Role.VIEWER, name="v")
    lookups = Lookups(keys, monkeypatch)
    assert await keys.authenticate(key) is not None
    clock.now += 1
    await store(sessions, ttl=0).revoke(key[:PREFIX_LENGTH])  # elsewhere: another worker, the CLI
    clock.now += 7.5
    assert await keys.authenticate(key) is not None, "still within the TTL of the last lookup"
    await lookups.finish()
    assert lookups.calls == 2
    assert await keys.authenticate(key) is None, "the refresh read the revocation"


async def test_a_refresh_that_cannot_reach_the_database_does_not_extend_the_ttl(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    _row, key = await keys.create(role=Role.VIEWER, name="v")
    lookups = Lookups(keys, monkeypatch)
    assert await keys.authenticate(key) is not None
    await store(sessions, ttl=0).revoke(key[:PREFIX_LENGTH])
    lookups.failure = OSError("database unreachable")
    for _ in range(4):  # 8.0, 8.5, 9.0, 9.5 s: each hit is due and its background refresh fails
        clock.now += 8 if lookups.calls == 1 else 0.5
        assert await keys.authenticate(key) is not None
        await lookups.finish()
    assert lookups.calls == 5
    lookups.failure = None
    clock.now += 0.5
    assert await keys.authenticate(key) is None, "expired at its TTL; the next lookup reads the revocation"


async def test_revoking_in_this_process_stops_the_key_at_once_even_while_a_refresh_is_running(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    _row, key = await keys.create(role=Role.VIEWER, name="v")
    lookups = Lookups(keys, monkeypatch)
    assert await keys.authenticate(key) is not None
    lookups.gate.clear()
    clock.now += 9
    lookups.answered.clear()
    assert await keys.authenticate(key) is not None
    await asyncio.sleep(0)
    assert lookups.calls == 2, "the hit started a refresh"
    await lookups.answered.wait()  # which has read the key, still active, and is held
    await keys.revoke(key[:PREFIX_LENGTH])
    lookups.gate.set()
    assert await keys.authenticate(key) is None, "a new lookup, not the one that read the key before"
    await lookups.finish()
    assert await keys.authenticate(key) is None, "the stale refresh did not store its answer"
    assert lookups.calls == 3


async def test_close_cancels_the_lookups_still_running(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    keys = store(sessions, ttl=10, clock=clock)
    _row, key = await keys.create(role=Role.VIEWER, name="v")
    lookups = Lookups(keys, monkeypatch)
    await keys.authenticate(key)
    lookups.gate.clear()
    clock.now += 9
    await keys.authenticate(key)
    await asyncio.sleep(0)
    assert lookups.calls == 2
    await keys.close()
    assert all(task.done() for task in lookups._running)


async def test_the_bootstrap_admin_key_is_created_once_and_works(serve: Serve) -> None:
    for _start in range(2):
        async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
            assert (await admin.get(f"{API}/keys")).status_code == 200
    keys = await app.state.resources.security.keys.list_keys(include_revoked=True)
    assert [key.role for key in keys if key.prefix == TEST_ADMIN_KEY[:PREFIX_LENGTH]] == ["admin"]


async def test_a_revoked_bootstrap_key_stays_revoked_after_a_restart(serve: Serve) -> None:
    async with serve() as app:
        await app.state.resources.security.keys.revoke(TEST_ADMIN_KEY[:PREFIX_LENGTH])
    async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
        assert_problem(await admin.get(f"{API}/keys"), 401)


async def test_ensure_reports_what_it_did(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = store(sessions)
    key = generate_key()
    assert await keys.ensure(key, role=Role.ADMIN, name="boot") is Ensured.CREATED
    assert await keys.ensure(key, role=Role.ADMIN, name="boot") is Ensured.PRESENT
    await keys.revoke(key[:PREFIX_LENGTH])
    assert await keys.ensure(key, role=Role.ADMIN, name="boot") is Ensured.REVOKED


def test_a_short_bootstrap_key_stops_the_service_without_echoing_it() -> None:
    from erp_api.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        load_settings(bootstrap_admin_key="too-short-a-secret")
    assert "ERP_BOOTSTRAP_ADMIN_KEY" in str(raised.value)
    assert "too-short-a-secret" not in str(raised.value)


async def test_remembered_digests_stay_bounded_and_right(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = KeyStore(sessions, cache_ttl_seconds=60.0, cache_max_entries=3)
    _row, key = await keys.create(role=Role.VIEWER, name="v")
    for _ in range(10):
        assert await keys.authenticate(generate_key()) is None
        assert await keys.authenticate("short") is None
        principal = await keys.authenticate(key)
        assert principal is not None and principal.name == "v"
        assert len(keys._digests) <= 3, "hostile keys cannot make the memory grow"
