"""The application: routes, middleware and a lifespan that owns every connection.

``create_app()`` with no arguments reads the environment, so
``uvicorn --factory erp_api.app:create_app`` works as it is.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp

from erp_api.admin import cache_routes
from erp_api.analyses import routes as analysis_routes
from erp_api.audit import routes as audit_routes
from erp_api.cached_reads import CachedReads
from erp_api.charges import overview_routes
from erp_api.charges import routes as charge_routes
from erp_api.compression import GZipMiddleware
from erp_api.docs_page import routes as docs_routes
from erp_api.errors import EXCEPTION_HANDLERS
from erp_api.events import routes as event_routes
from erp_api.exports import routes as export_routes
from erp_api.http import API_PREFIX, json_response
from erp_api.jobs import routes as job_routes
from erp_api.jobs.client import build_task_client
from erp_api.observability.exposition import metrics_endpoint
from erp_api.observability.health import liveness, readiness
from erp_api.observability.logging import configure_logging
from erp_api.observability.middleware import ObservabilityMiddleware
from erp_api.observability.multiprocess import mark_worker_exited
from erp_api.observability.request_ledger import RequestLedger
from erp_api.observability.server_errors import with_response_headers
from erp_api.openapi import build_openapi
from erp_api.quality import routes as quality_routes
from erp_api.quality.alerts import routes as alert_routes
from erp_api.quality.charts import routes as chart_routes
from erp_api.quality.inspections import routes as inspection_routes
from erp_api.quality.limits import routes as limit_routes
from erp_api.resources import open_resources
from erp_api.response_headers import DefaultHeaders, ResponseHeadersMiddleware
from erp_api.routing import PrematchedRouter
from erp_api.security import key_routes
from erp_api.security.access import Endpoint
from erp_api.security.cors import cors_middleware, cors_policy
from erp_api.security.headers import security_headers
from erp_api.security.middleware import UNLIMITED_PATHS, SecurityMiddleware
from erp_api.security.roles import PUBLIC, Role
from erp_api.settings import Settings, SettingsError, load_settings
from erp_api.webhooks import routes as webhook_routes

METRICS_PATH = "/metrics"
PROBE_PATHS = ("/health", "/health/ready")


async def openapi_document(request: Request) -> Response:
    document = request.app.state.openapi
    if document is None:
        document = request.app.state.openapi = build_openapi(request.app.routes)
    return json_response(document)


def api_routes() -> list[Endpoint]:
    return [
        *charge_routes.routes,
        *overview_routes.routes,
        *quality_routes.routes,
        *chart_routes.routes,
        *inspection_routes.routes,
        *limit_routes.routes,
        *alert_routes.routes,
        *analysis_routes.routes,
        *job_routes.routes,
        *audit_routes.routes,
        *key_routes.routes,
        *cache_routes.routes,
        *webhook_routes.routes,
        *export_routes.routes,
        *event_routes.routes,
    ]


class AppState(State):
    """``app.state`` whose attributes are read as plain attributes.

    Starlette's ``State`` finds an attribute only in ``__getattr__``, once the normal look-up has
    failed (an AttributeError raised and caught inside): 0.44 µs against 0.03, and every request
    reads ``app.state.resources``. Each attribute is also kept in the instance's ``__dict__``, where
    the normal look-up finds it first; ``State``'s mapping stays the one the rest of Starlette sees.
    """

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        self.__dict__[key] = value

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        del self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


class Application(Starlette):
    """Starlette with ``CachedReads`` in front of its whole stack (the error layers included)."""

    def __init__(self, *, settings: Settings, ledger: RequestLedger | None, **options: Any) -> None:
        self._settings = settings
        self._ledger = ledger
        super().__init__(**options)
        self.state = AppState()

    def build_middleware_stack(self) -> ASGIApp:
        return CachedReads(
            super().build_middleware_stack(),
            settings=self._settings,
            ledger=self._ledger,
            cors=cors_policy(self._settings),
            header_defaults=DefaultHeaders(security_headers(self._settings)),
            unlimited_paths=UNLIMITED_PATHS,
        )


def request_ledger(settings: Settings) -> RequestLedger | None:
    """The process's request ledger (metrics and access log), if the observability middleware is on."""
    return RequestLedger(access_log=settings.access_log) if settings.observability_middleware else None


def middleware(settings: Settings, ledger: RequestLedger | None) -> list[Middleware]:
    """Outermost first: response headers (the security headers, and those the others note: request
    id, rate limits), request id + metrics + access log, CORS, gzip, then security innermost: inside
    CORS (preflights need no key), just outside the router. ``CachedReads`` stands in front of them
    all (``Application``)."""
    observability = (
        [
            Middleware(
                ObservabilityMiddleware,
                excluded_paths=(METRICS_PATH, *PROBE_PATHS),
                ledger=ledger,
            )
        ]
        if ledger is not None
        else []
    )
    return [
        Middleware(ResponseHeadersMiddleware, defaults=security_headers(settings)),
        *observability,
        *cors_middleware(settings),
        Middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_bytes),
        Middleware(SecurityMiddleware, settings=settings),
    ]


def freeze_startup_heap() -> None:
    """Once per process, after the first startup: hide what is alive from the garbage collector.

    Modules, routes, schemas and the resources live as long as the process; left in the oldest
    generation, every full collection under load walks them all (100-200 ms with the event loop
    stopped, the slowest requests of a busy worker). Frozen, a full collection walks only what
    requests left behind. Reference counting still frees them; only cycles among them are kept.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()  # first, so that no garbage is frozen with them
        gc.freeze()


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
        if ledger is not None:
            ledger.also_on_flush(app.state.resources.cache_counters.record)
        freeze_startup_heap()
        try:
            yield
        finally:
            await app.state.resources.close()
            if settings.prometheus_multiproc_dir is not None:
                mark_worker_exited(settings.prometheus_multiproc_dir)

    ledger = request_ledger(settings)
    app = Application(
        settings=settings,
        ledger=ledger,
        debug=False,
        routes=[
            Mount(API_PREFIX, routes=api_routes()),
            # Probes and the schema are for anyone (load balancers, client generators).
            Endpoint("/openapi.json", openapi_document, "GET", PUBLIC, include_in_schema=False),
            # The docs page (Swagger UI, served from local files); / leads there.
            *docs_routes,
            Endpoint("/health", liveness, "GET", PUBLIC, include_in_schema=False),
            Endpoint("/health/ready", readiness, "GET", PUBLIC, include_in_schema=False),
            Endpoint(
                METRICS_PATH,
                metrics_endpoint,
                "GET",
                PUBLIC if settings.metrics_public else Role.ADMIN,
                include_in_schema=False,
            ),
        ],
        middleware=middleware(settings, ledger),
        exception_handlers=exception_handlers(settings),
        lifespan=lifespan,
    )
    # The same routes and lifespan; the router enters the route the security middleware found.
    app.router = PrematchedRouter(app.router.routes, lifespan=lifespan)
    app.state.openapi = None
    return app
