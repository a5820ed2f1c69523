"""Opaque keyset cursors: the position after the last row of a page, as (timestamp, id)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import orjson

from erp_api.errors import ValidationFailed

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 200


def encode_cursor(at: datetime, row_id: int) -> str:
    raw = orjson.dumps([CURSOR_VERSION, at.astimezone(UTC).isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (timestamp, id) a cursor stands for; anything a server did not issue is a 422."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, at_text, row_id = orjson.loads(raw)
        at = datetime.fromisoformat(at_text)
        if version != CURSOR_VERSION or at.tzinfo is None or type(row_id) is not int or row_id < 0:
            raise ValueError("unknown cursor shape")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed(
            "query.cursor: not a cursor this server issued; use next_cursor from a previous page",
            [{"field": "query.cursor", "message": "invalid cursor", "type": "cursor_invalid"}],
        ) from None
    return at, row_id
