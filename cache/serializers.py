"""Turn cached values into bytes and back, safely: bytes as they are, everything else as JSON.

Every stored value carries a one-byte format tag. ``bytes`` values (pre-serialized HTTP bodies, the
common case) are stored unchanged under ``RAW``; other values must be JSON-compatible and are encoded
with orjson under ``JSON``. Nothing is ever pickled, so a cache entry can never execute code. A reader
that meets a format tag it does not know treats the entry as a miss (``UnknownFormat``), which lets a
newer release write formats an older one still running alongside it cannot read.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["FORMATS", "JSON", "RAW", "UnknownFormat", "deserialize", "serialize"]

RAW: Final = 1
JSON: Final = 2
FORMATS: Final = frozenset({RAW, JSON})


class UnknownFormat(ValueError):
    """A stored value has a format tag this version cannot read; callers treat it as a miss."""


def serialize(value: Any) -> tuple[int, bytes]:
    """Return ``(format, data)`` for ``value``; raises ``TypeError`` if it is neither bytes nor JSON-able.

    Tuples come back as lists and dict keys must be strings, as with any JSON round trip.
    """
    if type(value) is bytes:
        return RAW, value
    if isinstance(value, bytes | bytearray | memoryview):
        return RAW, bytes(value)
    try:
        return JSON, orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"cannot cache a value of type {type(value).__qualname__}: {exc}") from exc


def deserialize(fmt: int, data: bytes) -> Any:
    """Inverse of ``serialize``; every call returns fresh objects, so callers cannot share state."""
    if fmt == RAW:
        return data
    if fmt == JSON:
        return orjson.loads(data)
    raise UnknownFormat(f"unknown cache value format {fmt}")
