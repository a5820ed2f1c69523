"""``/api/v1/cache``: the cache's counters, and invalidating tags by hand (admins only).

An invalidation is recorded in the audit trail (entity ``cache``, action ``invalidate``) by
``CacheAdminService`` (``erp_api/admin/service.py``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, RootModel, StringConstraints
from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, read_json
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.schemas import StrictBody
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "cache"
MAX_TAGS = 1_000
# Tags never contain control characters (cache.tags.validate_tags).
Tag = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CacheInvalidate(StrictBody):
    tags: Annotated[list[Tag], Field(min_length=1, max_length=MAX_TAGS)] = Field(
        description="Tags to invalidate, e.g. charge:42 or charges:list"
    )


class CacheInvalidated(BaseModel):
    tags: list[str]


class CacheStats(RootModel[dict[str, dict[str, int]]]):
    """Counters per cache namespace (hits, misses, loads, errors, ...)."""


@describe(Operation("Cache counters per namespace, of this worker", TAG, responses={200: CacheStats}))
async def cache_stats(request: Request) -> Response:
    return json_response(resources(request).cache_admin.stats(), headers={"Cache-Control": "no-store"})


@describe(
    Operation(
        "Invalidate every cached entry stored with any of the tags, in every worker",
        TAG,
        body=CacheInvalidate,
        responses={200: CacheInvalidated},
        errors=(413, 415, 503),
    )
)
async def invalidate_cache(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, CacheInvalidate, ctx.settings.max_body_bytes)
    return json_response({"tags": await ctx.cache_admin.invalidate(data.tags)})


routes = [
    Endpoint("/cache/stats", cache_stats, "GET", Role.ADMIN),
    Endpoint("/cache/invalidate", invalidate_cache, "POST", Role.ADMIN),
]
