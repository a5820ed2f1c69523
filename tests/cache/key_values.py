"""Key argument values sent to another process: enum types both sides import, and a tagged codec.

The codec keeps every distinction a cache key must keep (tuple vs list, int vs float vs bool,
bytes, dates, Decimal, UUID, Enum), which plain JSON would lose.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


ENUMS: dict[str, type[enum.Enum]] = {"Color": Color, "Level": Level, "Mode": Mode}


def to_wire(value: Any) -> Any:
    if value is None or isinstance(value, enum.Enum):
        if value is None:
            return ["none"]
        return ["enum", type(value).__name__, value.name]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", value.hex()]
    if isinstance(value, str):
        return ["str", base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()]
    if isinstance(value, bytes):
        return ["bytes", base64.b64encode(value).decode()]
    if isinstance(value, dt.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, tuple | list):
        return ["tuple" if isinstance(value, tuple) else "list", [to_wire(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", [[to_wire(k), to_wire(v)] for k, v in value.items()]]
    raise TypeError(type(value))


def from_wire(wire: Any) -> Any:
    kind, *rest = wire
    simple: dict[str, Callable[[], Any]] = {
        "none": lambda: None,
        "enum": lambda: ENUMS[rest[0]][rest[1]],
        "bool": lambda: rest[0],
        "int": lambda: int(rest[0]),
        "float": lambda: float.fromhex(rest[0]),
        "str": lambda: base64.b64decode(rest[0]).decode("utf-8", "surrogatepass"),
        "bytes": lambda: base64.b64decode(rest[0]),
        "datetime": lambda: dt.datetime.fromisoformat(rest[0]),
        "date": lambda: dt.date.fromisoformat(rest[0]),
        "decimal": lambda: Decimal(rest[0]),
        "uuid": lambda: uuid.UUID(rest[0]),
        "tuple": lambda: tuple(from_wire(item) for item in rest[0]),
        "list": lambda: [from_wire(item) for item in rest[0]],
        "dict": lambda: {from_wire(k): from_wire(v) for k, v in rest[0]},
    }
    return simple[kind]()
