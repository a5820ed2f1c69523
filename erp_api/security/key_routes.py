"""``/api/v1/keys``: list, create and revoke API keys over HTTP (admins only, as the routes below declare).

A revocation takes effect at once in the worker that served it and within
``ERP_AUTH_CACHE_TTL_SECONDS`` in every other.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, path_int, read_json, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources, web_security
from erp_api.security.access import Endpoint
from erp_api.security.key_store import key_dict
from erp_api.security.roles import Role
from erp_api.security.schemas import KeyCreate, KeyCreated, KeyList, KeyListQuery

TAG = "keys"
NO_STORE = {"Cache-Control": "no-store"}


@describe(Operation("List API keys (never their secrets)", TAG, query=KeyListQuery, responses={200: KeyList}))
async def list_keys(request: Request) -> Response:
    query = read_query(request, KeyListQuery)
    keys = await web_security(resources(request)).keys.list_keys(include_revoked=query.include_revoked)
    return json_response({"items": [key_dict(key) for key in keys]}, headers=NO_STORE)


@describe(
    Operation(
        "Create an API key; the response is the only time the key is shown",
        TAG,
        body=KeyCreate,
        responses={201: KeyCreated},
        errors=(413, 415),
    )
)
async def create_key(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, KeyCreate, ctx.settings.max_body_bytes)
    row, secret = await web_security(ctx).keys.create(role=data.role, name=data.name)
    return json_response({**key_dict(row), "key": secret}, 201, NO_STORE)


@describe(Operation("Revoke an API key", TAG, responses={204: None}, errors=(404,)))
async def revoke_key(request: Request) -> Response:
    await web_security(resources(request)).keys.revoke(str(path_int(request, "id")))
    return Response(status_code=204)


routes = [
    Endpoint("/keys", list_keys, "GET", Role.ADMIN),
    Endpoint("/keys", create_key, "POST", Role.ADMIN),
    Endpoint("/keys/{id}", revoke_key, "DELETE", Role.ADMIN),
]
