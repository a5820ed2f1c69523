"""API keys: stored as digests, looked up cheaply, revoked within the cache TTL, bootstrapped once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.db import create_engine, create_session_factory
from erp_api.errors import Conflict, NotFound
from erp_api.security.key_store import Ensured, KeyStore
from erp_api.security.keys import PREFIX_LENGTH, generate_key
from erp_api.security.models import ApiKey
from erp_api.security.roles import Role
from erp_api.settings import load_settings
from tests.charges.helpers import assert_problem
from tests.conftest import TEST_ADMIN_KEY
from tests.security.fixtures import Serve, http, new_key


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


@pytest.fixture
async def sessions(sqlite_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(load_settings(database_url=sqlite_database))
    yield create_session_factory(engine)
    await engine.dispose()


def store(sessions: Any, ttl: float = 60.0) -> KeyStore:
    return KeyStore(sessions, cache_ttl_seconds=ttl, cache_max_entries=100)


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
            assert (await client.get("/api/v1/charges")).status_code == 200
            # Revoked elsewhere (the command line, another worker): this worker trusts its cache until the TTL.
            other_worker = KeyStore(app.state.resources.sessions, cache_ttl_seconds=0, cache_max_entries=1)
            await other_worker.revoke(key[:PREFIX_LENGTH])
            assert (await client.get("/api/v1/charges")).status_code == 200
            await asyncio.sleep(0.35)
            response = await client.get("/api/v1/charges")
            assert_problem(response, 401)
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_the_bootstrap_admin_key_is_created_once_and_works(serve: Serve) -> None:
    for _start in range(2):
        async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
            assert (await admin.get("/api/v1/keys")).status_code == 200
    keys = await app.state.resources.security.keys.list_keys(include_revoked=True)
    assert [key.role for key in keys if key.prefix == TEST_ADMIN_KEY[:PREFIX_LENGTH]] == ["admin"]


async def test_a_revoked_bootstrap_key_stays_revoked_after_a_restart(serve: Serve) -> None:
    async with serve() as app:
        await app.state.resources.security.keys.revoke(TEST_ADMIN_KEY[:PREFIX_LENGTH])
    async with serve() as app, http(app, TEST_ADMIN_KEY) as admin:
        assert_problem(await admin.get("/api/v1/keys"), 401)


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
