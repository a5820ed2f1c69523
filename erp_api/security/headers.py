"""Security headers on every response: no framing, no sniffing, no referrer, a closed CSP, optional HSTS."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class SecurityHeadersMiddleware:
    """Adds ``headers`` to every HTTP response that does not set them itself (pure ASGI)."""

    def __init__(self, app: ASGIApp, headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self._headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                headers.extend(header for header in self._headers if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
