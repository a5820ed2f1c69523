"""The application: routes, middleware and a lifespan that owns every connection.

``create_app()`` with no arguments reads the environment, so
``uvicorn --factory erp_api.app:create_app`` works as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from cache import CacheManager, build_backend
from erp_api.charges import routes as charge_routes
from erp_api.charges.service import ChargeService
from erp_api.context import AppContext
from erp_api.db import create_engine, create_session_factory
from erp_api.errors import EXCEPTION_HANDLERS
from erp_api.http import json_response
from erp_api.openapi import build_openapi
from erp_api.settings import Settings, SettingsError, load_settings

API_PREFIX = "/api/v1"


def build_cache(settings: Settings) -> CacheManager:
    backend = build_backend(
        settings.cache_backend,
        redis_url=settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        pool_timeout=settings.redis_timeout_seconds,
        max_connections=settings.redis_pool_size,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
    )
    return CacheManager(backend, prefix=settings.cache_prefix, default_ttl=settings.cache_default_ttl_seconds)


async def openapi_document(request: Request) -> Response:
    document = request.app.state.openapi
    if document is None:
        document = request.app.state.openapi = build_openapi(request.app.routes)
    return json_response(document)


def api_routes() -> list[Route]:
    return [*charge_routes.routes]


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            # One line naming the variable, not a traceback, when started by uvicorn --factory.
            raise SystemExit(f"configuration error: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        cache = build_cache(settings)
        app.state.context = AppContext(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cache=cache,
            charges=ChargeService(sessions, cache),
        )
        try:
            yield
        finally:
            await cache.close()
            await engine.dispose()

    app = Starlette(
        debug=False,
        routes=[
            Mount(API_PREFIX, routes=api_routes()),
            Route("/openapi.json", openapi_document, methods=["GET"], include_in_schema=False),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.openapi = None
    return app
