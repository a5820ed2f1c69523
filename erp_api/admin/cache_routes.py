"""``/api/v1/cache``: the cache's counters, and invalidating tags by hand (admins only).

An invalidation is recorded in the audit trail (entity ``cache``, action ``invalidate``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.audit import trail as audit
from erp_api.errors import ServiceUnavailable
from erp_api.http import json_response, read_json
from erp_api.openapi import Operation, describe
from erp_api.resources import resources

TAG = "cache"
MAX_TAGS = 1_000
# Tags never contain control characters (cache.tags.validate_tags).
Tag = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CacheInvalidate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    tags: Annotated[list[Tag], Field(min_length=1, max_length=MAX_TAGS)] = Field(
        description="Tags to invalidate, e.g. charge:42 or charges:list"
    )


class CacheInvalidated(BaseModel):
    tags: list[str]


class CacheStats(RootModel[dict[str, dict[str, int]]]):
    """Counters per cache namespace (hits, misses, loads, errors, ...)."""


@describe(Operation("Cache counters per namespace, of this worker", TAG, responses={200: CacheStats}))
async def cache_stats(request: Request) -> Response:
    return json_response(resources(request).cache.stats(), headers={"Cache-Control": "no-store"})


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
    tags = sorted(set(data.tags))
    if not await ctx.cache.invalidate_tags(tags):
        raise ServiceUnavailable("the cache backend is unreachable; entries expire within their TTL")
    async with ctx.sessions.begin() as session:
        await audit.record(
            session, entity="cache", entity_id="tags", action="invalidate", after={"tags": tags}
        )
    return json_response({"tags": tags})


routes = [
    Route("/cache/stats", cache_stats, methods=["GET"]),
    Route("/cache/invalidate", invalidate_cache, methods=["POST"]),
]
