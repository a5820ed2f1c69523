"""Keyset pages and their opaque cursors: the one paging mechanism of every listing.

A listing orders its rows by a unique key, fetches ``rows_to_fetch(limit)`` rows after the position
of the cursor, and hands them to ``page_of``, which keeps ``limit`` of them and, if there were more,
returns the cursor of the last one kept. A position is ``(timestamp, id)`` (rows ordered by a time,
ties broken by id), an id alone (rows ordered by id), or a ``SortedPosition`` (rows ordered by one of
several named sorts a client chooses: the sort's name, the row's sort key as text, its id).

A cursor is URL-safe base64 (unpadded) of the JSON array ``[version, timestamp, id]``,
``[version, id]`` or ``[version, sort, key, id]``; ``CURSOR_VERSION`` changes when that format does.
Clients treat it as opaque: anything the server did not issue, or issued for another kind of
position or another sort, is a 422.

A page document ends with its ``next_cursor`` (``KeysetPage.document``), so that ``next_cursor_of``
finds it in a cached page's bytes without parsing them; ``erp_api.http.paged_response`` turns it
into the page's RFC 8288 ``Link: <...>; rel="next"`` header.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, NamedTuple, TypeVar

import orjson

from erp_api.errors import ValidationFailed

CURSOR_VERSION: Final = 1
MAX_CURSOR_LENGTH: Final = 200
# Ids are positive 64-bit integers in both databases; a cursor naming anything else was not issued here.
MAX_ID: Final = 2**63 - 1

TimedPosition = tuple[datetime, int]


class SortedPosition(NamedTuple):
    """A row's place in a listing ordered by the named ``sort``: its sort ``key`` as text, its id."""

    sort: str
    key: str
    row_id: int


Position = TimedPosition | int | SortedPosition
T = TypeVar("T")
K = TypeVar("K")
# The end of a page document as orjson writes it (no spaces): the cursor is base64url or null.
_NEXT_CURSOR_SUFFIX = re.compile(rb'"next_cursor":(?:null|"([A-Za-z0-9_-]*)")}\s*\Z')


@dataclass(frozen=True, slots=True)
class KeysetPage(Generic[T]):
    """The rows of one page and the cursor of the next page (None on the last page)."""

    rows: list[T]
    next_cursor: str | None

    def document(self, render: Callable[[T], Any], **extra: Any) -> dict[str, Any]:
        """The page as listings send it: ``{"items": [...], **extra, "next_cursor": ...}``, the
        cursor last (see ``next_cursor_of``)."""
        return {"items": [render(row) for row in self.rows], **extra, "next_cursor": self.next_cursor}


def next_cursor_of(document: bytes | Mapping[str, Any]) -> str | None:
    """The ``next_cursor`` of a page document, as a dict or as the JSON bytes a listing sends."""
    if not isinstance(document, bytes):
        cursor = document.get("next_cursor")
        return cursor if isinstance(cursor, str) else None
    found = _NEXT_CURSOR_SUFFIX.search(document[-MAX_CURSOR_LENGTH - 32 :])
    if found is not None:
        return found.group(1).decode("ascii") if found.group(1) is not None else None
    # Not written by KeysetPage.document: read the whole document.
    parsed = orjson.loads(document)
    return next_cursor_of(parsed) if isinstance(parsed, dict) else None


def rows_to_fetch(limit: int) -> int:
    """How many rows to query for a page of ``limit``: one more tells whether another page follows."""
    return limit + 1


def page_of(rows: Sequence[T], limit: int, key: Callable[[T], Position]) -> KeysetPage[T]:
    """The first ``limit`` of ``rows`` (fetched with ``rows_to_fetch(limit)``) and the cursor after them.

    ``key`` gives a row's position, ``(timestamp, id)`` or an id; the cursor is set only when more
    rows than ``limit`` were fetched.
    """
    kept = list(rows[:limit])
    next_cursor = encode_position(key(kept[-1])) if len(rows) > limit and kept else None
    return KeysetPage(kept, next_cursor)


def encode_position(position: Position) -> str:
    """The cursor of a ``(timestamp, id)``, id-only or sorted position."""
    if isinstance(position, SortedPosition):
        return encode_sorted_cursor(position)
    if isinstance(position, int):
        return encode_id_cursor(position)
    return encode_cursor(*position)


def encode_cursor(at: datetime, row_id: int) -> str:
    """The cursor of the position ``(at, row_id)``; ``at`` must be timezone-aware."""
    return _encode([CURSOR_VERSION, at.astimezone(UTC).isoformat(), row_id])


def encode_id_cursor(row_id: int) -> str:
    """The cursor of the id-only position ``row_id``."""
    return _encode([CURSOR_VERSION, row_id])


def encode_sorted_cursor(position: SortedPosition) -> str:
    """The cursor of a position in a listing with a named sort."""
    return _encode([CURSOR_VERSION, position.sort, position.key, position.row_id])


def instant_key(at: datetime) -> str:
    """A timezone-aware time as the key of a ``SortedPosition`` (read back by ``parse_instant``)."""
    return at.astimezone(UTC).isoformat()


def parse_instant(text: str) -> datetime:
    """The instant ``text`` names (ISO 8601 with an offset), in UTC; ValueError for anything else,
    a time outside years 1 to 9999 in UTC included (the database could not compare with it)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("naive timestamp")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the representable range") from None


def decode_cursor(cursor: str | None) -> TimedPosition | None:
    """The ``(timestamp, id)`` a cursor stands for (None for none or ``""``); anything else is a 422."""
    if not cursor:
        return None
    fields = _decode(cursor)
    try:
        if len(fields) != 3:
            raise ValueError("not a (timestamp, id) cursor")
        _version, at_text, row_id = fields
        at = parse_instant(at_text)
    except (ValueError, TypeError):
        raise _invalid() from None
    return at, _checked_id(row_id)


def decode_id_cursor(cursor: str | None) -> int | None:
    """The id a cursor stands for (None for none or ``""``); anything else is a 422."""
    if not cursor:
        return None
    fields = _decode(cursor)
    if len(fields) != 2:
        raise _invalid()
    return _checked_id(fields[1])


def decode_sorted_cursor(
    cursor: str | None, sort: str, parse_key: Callable[[str], K]
) -> tuple[K, int] | None:
    """The ``(key, id)`` a cursor of the listing sorted by ``sort`` stands for (None for none or
    ``""``); ``parse_key`` reads the key (raising ValueError on anything it did not write). A cursor
    issued for another sort is a 422 that says so; anything else not issued here is a 422 too."""
    if not cursor:
        return None
    fields = _decode(cursor)
    if len(fields) != 4 or type(fields[1]) is not str or type(fields[2]) is not str:
        raise _invalid()
    _version, issued_for, key_text, row_id = fields
    if issued_for != sort:
        message = f"this cursor pages sort={issued_for}; to list by sort={sort}, start without a cursor"
        raise ValidationFailed(
            f"query.cursor: {message}",
            [{"field": "query.cursor", "message": message, "type": "cursor_sort_mismatch"}],
        )
    try:
        key = parse_key(key_text)
    except (ValueError, TypeError, ArithmeticError):
        raise _invalid() from None
    return key, _checked_id(row_id)


def _encode(fields: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode("ascii")


def _decode(cursor: str) -> list[Any]:
    """The fields of a cursor of this version, or a 422."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        fields = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _invalid() from None
    if (
        not isinstance(fields, list)
        or not fields
        or type(fields[0]) is not int
        or fields[0] != CURSOR_VERSION
    ):
        raise _invalid()
    return fields


def _checked_id(row_id: Any) -> int:
    if type(row_id) is not int or not 0 < row_id <= MAX_ID:
        raise _invalid()
    return row_id


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        "query.cursor: not a cursor this server issued; use next_cursor from a previous page",
        [{"field": "query.cursor", "message": "invalid cursor", "type": "cursor_invalid"}],
    )
