"""Which failures of an analysis are worth retrying, and how a failure reads in the job record."""

from __future__ import annotations

import socket

from sqlalchemy import exc as sa_exc

from erp_api.errors import ApiError

MAX_ERROR_LENGTH = 500

# The database (or the network to it) is down or overloaded: the same run may well succeed later.
_TRANSIENT: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


class AnalysisTimedOut(Exception):
    """The analysis itself ran past its time limit; running it again would take as long."""


def is_transient(exc: BaseException) -> bool:
    """True for failures of the database or the network, which a retry with backoff may outlive."""
    if isinstance(exc, AnalysisTimedOut):
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT)


def describe_failure(exc: BaseException) -> str:
    """One readable line for the job record: what went wrong, never a stack trace or SQL."""
    if isinstance(exc, ApiError):
        text = exc.detail
    elif isinstance(exc, sa_exc.SQLAlchemyError):
        text = f"database error ({type(exc).__name__}); see the worker log"
    else:
        message = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
