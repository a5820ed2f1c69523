"""Structured logs: one JSON object per line on stdout, from structlog and the standard library alike.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level`` and ``event``, plus ``request_id`` when
it is written while a request (or a task that carries one) is being served. Values are serialized
as JSON, so user input such as a path with control characters stays one escaped line.
"""

from __future__ import annotations

import json
import logging
import time

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from erp_api.observability.log_output import JsonLineWriter
from erp_api.observability.request_id import current_request_id

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}

# Logging is process-wide by nature: one writer per process.
_writer = JsonLineWriter()
_configured_level: str | None = None


def add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Add the current request id, if any (a processor)."""
    request_id = current_request_id()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


class UtcTimestamp:
    """Formats epoch seconds as ISO 8601 UTC with microseconds; the date part once a second."""

    def __init__(self) -> None:
        self._cached: tuple[int, str] = (-1, "")

    def format(self, epoch: float) -> str:
        second = int(epoch)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return "%s.%06dZ" % (prefix, (epoch - second) * 1_000_000)  # noqa: UP031 -- the fastest here

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        """Add ``timestamp`` for now (a processor)."""
        event_dict["timestamp"] = self.format(time.time())
        return event_dict


def render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> bytes:
    """Serialize the event as one line of JSON (the last processor)."""
    try:
        return orjson.dumps(event_dict, default=repr)
    except TypeError:
        # orjson refuses lone surrogates and non-string keys; the stdlib encoder escapes them.
        return json.dumps(event_dict, default=repr, ensure_ascii=True).encode()


class _StdlibJsonHandler(logging.Handler):
    """Hands standard-library records (uvicorn, SQLAlchemy, Celery) to the same JSON output."""

    def __init__(self, writer: JsonLineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.msg(self.format(record).encode())
        except Exception:
            self.handleError(record)


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        UtcTimestamp(),
        structlog.processors.format_exc_info,
    ]


def _render_text(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
    return render_json(logger, method, event_dict).decode()


def configure_logging(level: str = "INFO") -> None:
    """Send structlog and standard-library logging to stdout as JSON lines, at ``level`` and above.

    Called at process start and by the app's lifespan; calling it again with the same level does
    nothing. Loggers already used keep the level they were first used with.
    """
    global _configured_level  # noqa: PLW0603 -- see the comment on _writer
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {sorted(LEVELS)}, not {level!r}")
    if _configured_level == level:
        return
    structlog.configure(
        processors=[*_shared_processors(), render_json],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=lambda *_args: _writer,
        cache_logger_on_first_use=True,
    )
    handler = _StdlibJsonHandler(_writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _render_text],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibJsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    _configured_level = level


def info_enabled() -> bool:
    """Whether INFO lines are written (the access log is INFO)."""
    return LEVELS.get(_configured_level or "INFO", logging.INFO) <= logging.INFO


def access_line(  # noqa: PLR0917 -- called once per request in a batch: positional, no keyword dict
    method: str, route: str, path: str, status: int, seconds: float, request_id: str, timestamp: str
) -> bytes:
    """The access log line of one request: the fields and format of a structlog INFO line.

    Rendered directly rather than through the processor chain: it is written for every request.
    """
    return render_json(
        None,
        "info",
        {
            "event": "request",
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": int(seconds * 1_000_000) / 1000,
            "request_id": request_id,
            "level": "info",
            "timestamp": timestamp,
        },
    )


def write_log_lines(lines: list[bytes]) -> None:
    """Write lines rendered elsewhere (the access log) to the same output, in one call."""
    _writer.write_lines(lines)
