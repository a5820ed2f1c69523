"""The application: routes, middleware and a lifespan that owns every connection.

``create_app()`` with no arguments reads the environment, so
``uvicorn --factory erp_api.app:create_app`` works as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from cache import CacheManager, build_backend
from erp_api.admin import cache_routes
from erp_api.analyses import job_routes
from erp_api.analyses import routes as analysis_routes
from erp_api.analyses.jobs import JobStatusService
from erp_api.analyses.service import AnalysisService
from erp_api.charges import routes as charge_routes
from erp_api.charges.service import ChargeService
from erp_api.context import AppContext, context
from erp_api.db import create_engine, create_session_factory
from erp_api.http import json_response
from erp_api.observability.db_metrics import instrument_engine
from erp_api.observability.logging import configure_logging
from erp_api.observability.metrics import record_cache_event
from erp_api.observability.multiprocess import mark_worker_exited
from erp_api.observability.stack import exception_handlers, http_middleware, operational_routes
from erp_api.openapi import build_openapi
from erp_api.quality import routes as quality_routes
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.service import QualityService
from erp_api.quality.writer import MeasurementWriter
from erp_api.security import audit_routes, key_routes
from erp_api.security.middleware import SecurityMiddleware
from erp_api.security.roles import access_policy, required_roles
from erp_api.security.state import build_security, ensure_bootstrap_key
from erp_api.settings import Settings, SettingsError, load_settings
from tasks.client import build_task_client

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
    return CacheManager(
        backend,
        prefix=settings.cache_prefix,
        default_ttl=settings.cache_default_ttl_seconds,
        on_event=record_cache_event,
    )


async def openapi_document(request: Request) -> Response:
    document = request.app.state.openapi
    if document is None:
        policy = access_policy(metrics_public=context(request).settings.metrics_public)
        document = request.app.state.openapi = build_openapi(
            request.app.routes, access=required_roles(policy)
        )
    return json_response(document)


def api_routes() -> list[Route]:
    return [
        *charge_routes.routes,
        *quality_routes.routes,
        *analysis_routes.routes,
        *job_routes.routes,
        *audit_routes.routes,
        *key_routes.routes,
        *cache_routes.routes,
    ]


def create_app(settings: Settings | None = None) -> Starlette:
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            # One line naming the variable, not a traceback, when started by uvicorn --factory.
            raise SystemExit(f"configuration error: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        engine = create_engine(settings)
        instrument_engine(engine)
        sessions = create_session_factory(engine)
        cache = build_cache(settings)
        ingestor = MeasurementIngestor(
            MeasurementWriter(sessions, cache).write,
            window_seconds=settings.ingest_window_ms / 1000,
            max_rows=settings.ingest_max_rows_per_commit,
            queue_bound=settings.ingest_queue_bound,
            stop_timeout_seconds=settings.request_timeout_seconds,
        )
        await ingestor.start()
        # Publishes to the broker (lazily: no connection until the first task is sent).
        tasks = build_task_client(settings)
        security = build_security(settings, sessions)
        await ensure_bootstrap_key(settings, security.keys)
        app.state.context = AppContext(
            settings=settings,
            engine=engine,
            sessions=sessions,
            cache=cache,
            charges=ChargeService(sessions, cache),
            quality=QualityService(sessions, cache, ingestor),
            ingestor=ingestor,
            analyses=AnalysisService(sessions, tasks),
            jobs=JobStatusService(sessions, tasks),
            security=security,
        )
        try:
            yield
        finally:
            # Accepted measurements are committed before the connections they need are closed.
            await ingestor.stop()
            await tasks.close()
            await security.close()
            await cache.close()
            await engine.dispose()
            if settings.prometheus_multiproc_dir is not None:
                mark_worker_exited(settings.prometheus_multiproc_dir)

    app = Starlette(
        debug=False,
        routes=[
            Mount(API_PREFIX, routes=api_routes()),
            Route("/openapi.json", openapi_document, methods=["GET"], include_in_schema=False),
            *operational_routes(),
        ],
        # Security goes innermost: inside CORS (preflights need no key), just outside the router.
        middleware=[*http_middleware(settings), Middleware(SecurityMiddleware, settings=settings)],
        exception_handlers=exception_handlers(settings),
        lifespan=lifespan,
    )
    app.state.openapi = None
    return app
