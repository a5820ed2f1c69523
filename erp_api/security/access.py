"""Who may call an endpoint and how large a body it takes, declared on its route.

An ``Endpoint`` is a Starlette ``Route`` for one method that carries an ``Access``: the least role
that may call it (or ``PUBLIC``) and its body limit class; a read may also declare its answer from
the cache alone (``cached``, see ``erp_api.cached_reads``). Its OpenAPI ``Operation`` is on the
handler it serves. The security middleware, the body limits and the OpenAPI document read the
access of the route that serves a request (``access_of``); no table is kept beside the routes.
A route that declares nothing (a plain ``Route``, a ``Mount`` of another app) requires admin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from erp_api.security.body_limit import BodyLimit
from erp_api.security.roles import DEFAULT_REQUIREMENT, Requirement

CachedRead = Callable[[Request], Awaitable[Response | None]]
"""An endpoint's answer read from the cache alone (no database), or None when it is not cached."""


@dataclass(frozen=True, slots=True)
class Access:
    role: Requirement
    body: BodyLimit = BodyLimit.DEFAULT
    ticket_auth: bool = False
    """Also authenticated by a single-use ``?ticket=`` (``erp_api.events.tickets``): for a browser's
    ``EventSource``, which cannot send ``Authorization``."""


UNDECLARED: Final = Access(DEFAULT_REQUIREMENT)
"""The access of a route that declares none: default-deny."""


class Endpoint(Route):
    """A route for one HTTP method (and ``HEAD`` with ``GET``) that declares its ``Access``."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        method: str,
        role: Requirement,
        *,
        body: BodyLimit = BodyLimit.DEFAULT,
        include_in_schema: bool = True,
        ticket_auth: bool = False,
        cached: CachedRead | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=[method], include_in_schema=include_in_schema)
        self.access = Access(role, body, ticket_auth)
        self.cached = cached
        """The endpoint's answer from the cache alone, or None to leave it to the endpoint: what
        ``erp_api.cached_reads`` answers with, in front of the framework, when it can."""


def access_of(route: BaseRoute) -> Access:
    """What calling ``route`` requires: its declaration, else ``UNDECLARED``."""
    return route.access if isinstance(route, Endpoint) else UNDECLARED
