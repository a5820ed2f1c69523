"""Security headers on every response: no framing, no sniffing, no referrer, a closed CSP, optional HSTS.

``response_headers.ResponseHeadersMiddleware`` adds them to every response that does not set them
itself; the handler of unhandled errors adds them to its 500s (``observability.server_errors``).
"""

from __future__ import annotations

from erp_api.settings import Settings

# The API serves JSON only: nothing may be framed, sniffed into HTML, or load sub-resources.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """The headers every response carries; HSTS only when ``hsts_max_age_seconds`` is set."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ]
    if settings.hsts_max_age_seconds > 0:
        headers.append(
            ("Strict-Transport-Security", f"max-age={settings.hsts_max_age_seconds}; includeSubDomains")
        )
    return headers
