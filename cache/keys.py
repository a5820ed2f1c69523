"""Stable, injective cache keys built from call arguments.

Every supported value is written in a typed, self-delimiting form (a type letter, then either a length
prefix or a terminator that cannot occur in the payload), so the encoding can be parsed back
unambiguously: different arguments never share a key (``None`` vs ``""``, ``("a:b", "c")`` vs
``("a", "b:c")``, ``1`` vs ``"1"`` vs ``1.0`` vs ``True``). Nothing depends on ``hash()``, object ids
or default ``repr``, so the same call gives the same key in every process. Long or non-printable
encodings are replaced by a BLAKE2b digest, marked with ``#`` (a letter no plain encoding starts with).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any

__all__ = ["MAX_PLAIN_KEY_LENGTH", "encode_key"]

MAX_PLAIN_KEY_LENGTH = 120
"""Encodings up to this many printable ASCII characters are used as they are; longer ones are digested."""

_Encoder = Callable[[Any, list[str]], None]


def _none(_value: None, out: list[str]) -> None:
    out.append("N")


def _bool(value: bool, out: list[str]) -> None:
    out.append("T" if value else "F")


def _int(value: int, out: list[str]) -> None:
    out.append(f"i{int(value)};")


def _float(value: float, out: list[str]) -> None:
    # repr() of a float is the shortest string that round-trips, identical on every platform.
    out.append(f"f{float(value)!r};")


def _str(value: str, out: list[str]) -> None:
    out.append(f"s{len(value)}:{value}")


def _bytes(value: bytes, out: list[str]) -> None:
    out.append(f"b{len(value)}:{value.hex()}")


def _date(value: dt.date, out: list[str]) -> None:
    out.append(f"d{value.isoformat()};")


def _datetime(value: dt.datetime, out: list[str]) -> None:
    out.append(f"t{value.isoformat()};")


def _decimal(value: Decimal, out: list[str]) -> None:
    out.append(f"D{value};")


def _uuid(value: uuid.UUID, out: list[str]) -> None:
    out.append(f"u{value.hex}")


def _enum(value: Enum, out: list[str]) -> None:
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}"
    out.append(f"E{len(name)}:{name}")
    _encode(value.value, out)


def _sequence(open_: str, close: str) -> _Encoder:
    def encode(value: tuple[Any, ...] | list[Any], out: list[str]) -> None:
        out.append(open_)
        for item in value:
            _encode(item, out)
        out.append(close)

    return encode


def _dict(value: dict[Any, Any], out: list[str]) -> None:
    # Order-independent: pairs sorted by the encoding of their key, which is unique within one dict.
    pairs = []
    for k, v in value.items():
        key_parts: list[str] = []
        _encode(k, key_parts)
        pairs.append(("".join(key_parts), v))
    pairs.sort(key=lambda pair: pair[0])
    out.append("{")
    for encoded_key, v in pairs:
        out.append(encoded_key)
        _encode(v, out)
    out.append("}")


_EXACT: dict[type, _Encoder] = {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
    bytes: _bytes,
    dt.date: _date,
    dt.datetime: _datetime,
    Decimal: _decimal,
    uuid.UUID: _uuid,
    tuple: _sequence("(", ")"),
    list: _sequence("[", "]"),
    dict: _dict,
}

# Checked in this order for subclasses: Enum before int/str (IntEnum, StrEnum), bool before int,
# datetime before date.
_BY_ISINSTANCE: tuple[tuple[type, _Encoder], ...] = (
    (Enum, _enum),
    (bool, _bool),
    (int, _int),
    (float, _float),
    (str, lambda value, out: _str(str(value), out)),
    (bytes, lambda value, out: _bytes(bytes(value), out)),
    (dt.datetime, _datetime),
    (dt.date, _date),
    (Decimal, _decimal),
    (uuid.UUID, _uuid),
    (tuple, _EXACT[tuple]),
    (list, _EXACT[list]),
    (dict, _dict),
)


def _encode(value: Any, out: list[str]) -> None:
    encoder = _EXACT.get(type(value))
    if encoder is None:
        for cls, candidate in _BY_ISINSTANCE:
            if isinstance(value, cls):
                encoder = candidate
                break
        else:
            raise TypeError(
                f"cannot build a cache key from {type(value).__qualname__!s}: use str, int, float, bool, "
                "None, bytes, date, datetime, Decimal, Enum, UUID, or tuples/lists/dicts of these"
            )
    encoder(value, out)


def encode_key(value: Any) -> str:
    """Encode a key value (typically a tuple of arguments) as a stable, injective string.

    Raises ``TypeError`` for values of unsupported types.
    """
    # Fast paths for the most common keys: a lone str or int, or a tuple of arguments.
    value_type = type(value)
    if value_type is str:
        text = f"s{len(value)}:{value}"
    elif value_type is int:
        text = f"i{value};"
    elif value_type is tuple:
        parts = ["("]
        for item in value:
            item_type = type(item)
            if item_type is int:
                parts.append(f"i{item};")
            elif item_type is str:
                parts.append(f"s{len(item)}:{item}")
            else:
                _encode(item, parts)
        parts.append(")")
        text = "".join(parts)
    else:
        parts = []
        _encode(value, parts)
        text = "".join(parts)
    if len(text) <= MAX_PLAIN_KEY_LENGTH and text.isascii() and text.isprintable():
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
    return f"#{digest}"
