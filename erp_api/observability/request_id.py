"""The id that ties together every log line of one request (and the tasks it enqueues).

A client may send ``X-Request-ID``; a well-formed value is kept, anything else is replaced by a new
uuid4 hex. The id is bound in a context variable for the request's task, so log lines and code far
from the HTTP layer (e.g. a Celery publisher putting it into task headers) can read it with
``current_request_id()``.
"""

from __future__ import annotations

import os
import random
import re
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"
SCOPE_KEY = "erp.request_id"
"""Where the middleware also leaves the id in the ASGI scope, for handlers outside the middleware."""

_WELL_FORMED = re.compile(rb"[A-Za-z0-9._-]{8,128}")
REQUEST_ID: ContextVar[str | None] = ContextVar("erp_request_id", default=None)
"""The current request id; the HTTP middleware sets it directly (``bind_request_id`` elsewhere)."""


# A request id correlates log lines; it is no secret, so a seeded PRNG serves (no system call per
# request, unlike os.urandom). Reseeded in forked children, which would otherwise repeat the ids.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random (version 4) UUID as 32 hex digits."""
    return "%032x" % ((_random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)


def accept_request_id(raw: bytes | None) -> str:
    """The client's id if it is 8-128 characters of ``[A-Za-z0-9._-]``, else a new one."""
    if raw is not None and _WELL_FORMED.fullmatch(raw):
        return raw.decode("ascii")
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request (or task) being served in this context, if any."""
    return REQUEST_ID.get()


def bind_request_id(request_id: str | None) -> Token[str | None]:
    """Make ``request_id`` current; pass the token to ``reset_request_id`` when done."""
    return REQUEST_ID.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    REQUEST_ID.reset(token)
