"""CORS for the allow-listed origins of browser frontends (``ERP_CORS_ALLOW_ORIGINS``)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from erp_api.settings import Settings

CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = ("Content-Type", "Authorization", "If-Match", "If-None-Match", "X-Request-ID")
CORS_EXPOSED_HEADERS = ("ETag", "Location", "X-Request-ID")


def cors_middleware(settings: Settings) -> list[Middleware]:
    """CORS for the allow-listed origins only; no middleware at all when the list is empty."""
    if not settings.cors_allow_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    ]
