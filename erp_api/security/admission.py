"""Who calls, and how much they may: the per-request checks of the security middleware as plain
functions, for it and for ``erp_api.cached_reads``, which answers cached reads in front of it.

``authenticate`` reads ``Authorization: Bearer <key>`` (or a single-use ``?ticket=`` where the route
allows one); ``Quotas.count`` counts the request against its caller's rate limit: per key by the
key's role, else per client address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl

from starlette.types import Scope

from erp_api.errors import ServiceUnavailable, Unauthorized, database_unavailable
from erp_api.security.principal import Principal
from erp_api.security.ratelimit import Decision
from erp_api.security.roles import Role
from erp_api.settings import Settings

if TYPE_CHECKING:
    from erp_api.security.services import SecurityServices

CHALLENGE: Final = 'Bearer realm="erp-api"'


async def authenticate(
    scope: Scope, services: SecurityServices, *, ticket_auth: bool = False
) -> tuple[Principal | None, Unauthorized | ServiceUnavailable | None]:
    """The caller's principal, or why there is none (a 401, or a 503 when keys cannot be read)."""
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if not values and ticket_auth and (ticket := _ticket(scope)) is not None:
        principal = await scope["app"].state.resources.event_tickets.redeem(ticket)
        if principal is None:
            return None, Unauthorized(
                "the ticket is not valid (unknown, used or expired); get a new one",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
        return principal, None
    if not values:
        return None, Unauthorized(
            "send an API key as Authorization: Bearer <key>", headers={"WWW-Authenticate": CHALLENGE}
        )
    scheme, _, key = values[0].decode("latin-1").partition(" ")
    principal = None
    if len(values) == 1 and scheme.lower() == "bearer":
        try:
            principal = await services.keys.authenticate(key.strip())
        except Exception as exc:
            # Outside the router's handlers: answered here, or the server would close the connection.
            if (unavailable := database_unavailable(exc)) is None:
                raise
            return None, unavailable
    if principal is None:
        return None, Unauthorized(
            "the API key is not valid (unknown, revoked, or not a Bearer key)",
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )
    return principal, None


class Quotas:
    """The rate limit of each caller (``ERP_RATE_LIMIT_*``), and the count of its requests."""

    def __init__(self, settings: Settings) -> None:
        self._by_role = {
            Role.VIEWER: settings.rate_limit_viewer,
            Role.OPERATOR: settings.rate_limit_operator,
            Role.QUALITY_MANAGER: settings.rate_limit_quality_manager,
            Role.ADMIN: settings.rate_limit_admin,
        }
        self._anonymous = settings.rate_limit_anonymous

    async def count(self, scope: Scope, services: SecurityServices, principal: Principal | None) -> Decision:
        """Count one request: against its key's quota, else against its client address's."""
        if principal is not None and principal.key_id is not None:
            bucket, quota = f"key:{principal.key_id}", self._by_role[principal.role]
        else:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            quota = self._by_role[principal.role] if principal is not None else self._anonymous
            bucket = f"addr:{address}"
        return await services.limiter.hit(bucket, quota)


def security_services(scope: Scope) -> SecurityServices:
    """The security services of the app serving ``scope`` (built by its lifespan)."""
    services: SecurityServices = scope["app"].state.resources.security
    return services


def _ticket(scope: Scope) -> str | None:
    """The ``ticket`` query parameter, if there is exactly one."""
    values = [
        value
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        if name == "ticket"
    ]
    return values[0] if len(values) == 1 else None
