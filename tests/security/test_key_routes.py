"""Keys over HTTP: an admin creates one (shown once), lists them (no secrets), revokes one (at once)."""

from __future__ import annotations

import httpx

from erp_api.http import API_PREFIX as API
from tests.charges.helpers import assert_problem
from tests.security.fixtures import Serve, http


async def test_create_list_and_revoke_a_key_over_http(serve: Serve) -> None:
    from tests.conftest import TEST_ADMIN_KEY

    # A long TTL: the revocation must not wait for it in the worker that served it.
    async with serve(auth_cache_ttl_seconds=3600) as app, http(app, TEST_ADMIN_KEY) as admin:
        created = await admin.post(f"{API}/keys", json={"role": "operator", "name": "line 3 tablet"})
        assert created.status_code == 201
        body = created.json()
        assert body["role"] == "operator" and body["name"] == "line 3 tablet"
        assert body["key"].startswith(body["prefix"])
        async with http(app, body["key"]) as operator:
            assert (await operator.get(f"{API}/charges")).status_code == 200
            listed = await admin.get(f"{API}/keys")
            assert body["key"] not in listed.text
            assert body["id"] in [item["id"] for item in listed.json()["items"]]
            assert (await admin.delete(f"{API}/keys/{body['id']}")).status_code == 204
            assert_problem(await operator.get(f"{API}/charges"), 401)
        assert body["id"] not in [item["id"] for item in (await admin.get(f"{API}/keys")).json()["items"]]
        revoked = (await admin.get(f"{API}/keys", params={"include_revoked": "true"})).json()["items"]
        assert [item["revoked_at"] is not None for item in revoked if item["id"] == body["id"]] == [True]
        assert_problem(await admin.delete(f"{API}/keys/{body['id']}"), 404)


async def test_a_key_needs_a_known_role_and_a_printable_name(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post(f"{API}/keys", json={"role": "superuser", "name": "x"}), 422)
    assert_problem(await client.post(f"{API}/keys", json={"role": "viewer", "name": "a\nb"}), 422)
