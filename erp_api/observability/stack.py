"""What ``create_app`` takes from this package: the middleware list and the operational routes."""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware
from starlette.routing import Route

from erp_api.errors import EXCEPTION_HANDLERS
from erp_api.observability.exposition import metrics_endpoint
from erp_api.observability.health import liveness, readiness
from erp_api.observability.http_hygiene import (
    SecurityHeadersMiddleware,
    cors_middleware,
    gzip_middleware,
    security_headers,
)
from erp_api.observability.middleware import ObservabilityMiddleware
from erp_api.observability.server_errors import with_response_headers
from erp_api.settings import Settings

METRICS_PATH = "/metrics"
PROBE_PATHS = ("/health", "/health/ready")


def http_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: security headers, request id + metrics + access log, CORS, gzip."""
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
        gzip_middleware(settings),
    ]


def operational_routes() -> list[Route]:
    """Health probes and ``/metrics`` (who may read them is the access policy's concern)."""
    return [
        Route("/health", liveness, methods=["GET"], include_in_schema=False),
        Route("/health/ready", readiness, methods=["GET"], include_in_schema=False),
        Route(METRICS_PATH, metrics_endpoint, methods=["GET"], include_in_schema=False),
    ]


def exception_handlers(settings: Settings) -> dict[Any, Any]:
    """The app's handlers, with 500 responses given the headers the middleware gives the rest."""
    return {
        **EXCEPTION_HANDLERS,
        Exception: with_response_headers(EXCEPTION_HANDLERS[Exception], security_headers(settings)),
    }
