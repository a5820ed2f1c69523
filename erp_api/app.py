"""The application: routes, middleware and a lifespan that owns every connection.

``create_app()`` with no arguments reads the environment, so
``uvicorn --factory erp_api.app:create_app`` works as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from erp_api.admin import cache_routes
from erp_api.analyses import routes as analysis_routes
from erp_api.audit import routes as audit_routes
from erp_api.charges import routes as charge_routes
from erp_api.errors import EXCEPTION_HANDLERS
from erp_api.http import json_response
from erp_api.jobs import routes as job_routes
from erp_api.jobs.client import build_task_client
from erp_api.observability.exposition import metrics_endpoint
from erp_api.observability.health import liveness, readiness
from erp_api.observability.logging import configure_logging
from erp_api.observability.middleware import ObservabilityMiddleware
from erp_api.observability.multiprocess import mark_worker_exited
from erp_api.observability.server_errors import with_response_headers
from erp_api.openapi import build_openapi
from erp_api.quality import routes as quality_routes
from erp_api.resources import open_resources, resources
from erp_api.security import key_routes
from erp_api.security.cors import cors_middleware
from erp_api.security.headers import SecurityHeadersMiddleware, security_headers
from erp_api.security.middleware import SecurityMiddleware
from erp_api.security.roles import access_policy, required_roles
from erp_api.settings import Settings, SettingsError, load_settings

API_PREFIX = "/api/v1"
METRICS_PATH = "/metrics"
PROBE_PATHS = ("/health", "/health/ready")


async def openapi_document(request: Request) -> Response:
    document = request.app.state.openapi
    if document is None:
        policy = access_policy(metrics_public=resources(request).settings.metrics_public)
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


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: security headers, request id + metrics + access log, CORS, gzip, then security
    innermost: inside CORS (preflights need no key), just outside the router."""
    observability = (
        [
            Middleware(
                ObservabilityMiddleware,
                excluded_paths=(METRICS_PATH, *PROBE_PATHS),
                access_log=settings.access_log,
            )
        ]
        if settings.observability_middleware
        else []
    )
    return [
        Middleware(SecurityHeadersMiddleware, headers=security_headers(settings)),
        *observability,
        *cors_middleware(settings),
        Middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_bytes),
        Middleware(SecurityMiddleware, settings=settings),
    ]


def exception_handlers(settings: Settings) -> dict[Any, Any]:
    """The error mapping, with 500 responses given the headers the middleware gives the rest."""
    return {
        **EXCEPTION_HANDLERS,
        Exception: with_response_headers(EXCEPTION_HANDLERS[Exception], security_headers(settings)),
    }


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
        # Publishes to the broker (lazily: no connection until the first task is sent).
        app.state.resources = await open_resources(settings, tasks=build_task_client(settings), web=True)
        try:
            yield
        finally:
            await app.state.resources.close()
            if settings.prometheus_multiproc_dir is not None:
                mark_worker_exited(settings.prometheus_multiproc_dir)

    app = Starlette(
        debug=False,
        routes=[
            Mount(API_PREFIX, routes=api_routes()),
            Route("/openapi.json", openapi_document, methods=["GET"], include_in_schema=False),
            Route("/health", liveness, methods=["GET"], include_in_schema=False),
            Route("/health/ready", readiness, methods=["GET"], include_in_schema=False),
            Route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False),
        ],
        middleware=middleware(settings),
        exception_handlers=exception_handlers(settings),
        lifespan=lifespan,
    )
    app.state.openapi = None
    return app
