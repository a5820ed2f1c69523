"""The caller a request (or a background task) acts for, bound in a context variable.

The security middleware binds the authenticated key's principal for the request's task; code far
from HTTP (the audit trail, a service, a Celery task) reads it with ``current_principal()``. Outside
a request nothing is bound and ``SYSTEM`` stands for the caller.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from erp_api.security.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the key's id and name, and the role it was given.

    ``key_id`` is None for callers that hold no key: the system itself, the command line, or every
    request while authentication is turned off.
    """

    key_id: int | None
    name: str
    role: Role


SYSTEM = Principal(None, "system", Role.ADMIN)
"""Background work and anything else done outside a request."""

AUTH_DISABLED = Principal(None, "unauthenticated (ERP_AUTH_ENABLED=false)", Role.ADMIN)
"""Every request while authentication is off (benchmarks only)."""

_principal: ContextVar[Principal | None] = ContextVar("erp_principal", default=None)


def current_principal() -> Principal:
    """The caller of the request being served in this context, else ``SYSTEM``."""
    return _principal.get() or SYSTEM


def bind_principal(principal: Principal | None) -> Token[Principal | None]:
    """Make ``principal`` current; pass the token to ``reset_principal`` when done."""
    return _principal.set(principal)


def reset_principal(token: Token[Principal | None]) -> None:
    _principal.reset(token)
