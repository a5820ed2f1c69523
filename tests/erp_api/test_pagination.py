"""Keyset pages and cursors: what the server issues it reads back; anything else is a 422."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_api.errors import ValidationFailed
from erp_api.pagination import (
    CURSOR_VERSION,
    MAX_ID,
    KeysetPage,
    SortedPosition,
    decode_cursor,
    decode_id_cursor,
    decode_sorted_cursor,
    encode_cursor,
    encode_id_cursor,
    encode_sorted_cursor,
    instant_key,
    next_cursor_of,
    page_of,
    parse_instant,
    rows_to_fetch,
)

ids = st.integers(min_value=1, max_value=MAX_ID)
# Any fixed offset a real zone has; the range keeps the instant representable in UTC.
zones = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
instants = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=zones)


def forged(fields: Any) -> str:
    """A cursor of arbitrary JSON, in the server's encoding (``json`` encodes any integer)."""
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()


@given(at=instants, row_id=ids)
def test_a_timed_cursor_stands_for_the_same_instant_and_id(at: datetime, row_id: int) -> None:
    decoded = decode_cursor(encode_cursor(at, row_id))
    assert decoded == (at, row_id)
    assert decoded is not None and decoded[0].utcoffset() == timedelta(0)


@given(row_id=ids)
def test_an_id_cursor_stands_for_the_same_id(row_id: int) -> None:
    assert decode_id_cursor(encode_id_cursor(row_id)) == row_id


@given(at=instants, row_id=ids)
def test_cursors_are_url_safe_and_within_the_query_limit(at: datetime, row_id: int) -> None:
    for cursor in (encode_cursor(at, row_id), encode_id_cursor(row_id)):
        assert len(cursor) <= 200
        assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_no_cursor_or_an_empty_one_is_the_first_page() -> None:
    assert decode_cursor(None) is None and decode_cursor("") is None
    assert decode_id_cursor(None) is None and decode_id_cursor("") is None


AT = "2026-03-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "eyJ4IjoxfQ",  # {"x":1}
        "!!!!",
        forged([CURSOR_VERSION, AT, 2**63]),
        forged([CURSOR_VERSION, AT, 2**70]),
        forged([CURSOR_VERSION, AT, 0]),
        forged([CURSOR_VERSION, AT, -1]),
        forged([CURSOR_VERSION, AT, 1.0]),
        forged([CURSOR_VERSION, AT, True]),
        forged([CURSOR_VERSION, "2026-03-01T00:00:00", 1]),  # no time zone
        forged([CURSOR_VERSION, "yesterday", 1]),
        forged([CURSOR_VERSION, 5, 1]),
        forged([CURSOR_VERSION + 1, AT, 1]),
        forged([True, AT, 1]),
        forged([CURSOR_VERSION, 1]),  # an id cursor where a timed one belongs
        forged([CURSOR_VERSION, AT, 1, 2]),
        forged({"v": CURSOR_VERSION}),
        forged([]),
        forged(None),
        encode_cursor(datetime(2026, 3, 1, tzinfo=UTC), 1) + "A" * 200,
    ],
)
def test_a_timed_cursor_the_server_did_not_issue_is_a_422(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(cursor)
    assert raised.value.status == 422
    assert raised.value.extra["errors"] == [
        {"field": "query.cursor", "message": "invalid cursor", "type": "cursor_invalid"}
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        forged([CURSOR_VERSION, 2**63]),
        forged([CURSOR_VERSION, 0]),
        forged([CURSOR_VERSION, "1"]),
        forged([CURSOR_VERSION + 1, 1]),
        forged([CURSOR_VERSION, AT, 1]),  # a timed cursor where an id belongs
        forged([CURSOR_VERSION]),
    ],
)
def test_an_id_cursor_the_server_did_not_issue_is_a_422(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_id_cursor(cursor)


@given(at=instants, row_id=ids)
def test_cursors_of_one_kind_are_refused_by_the_other(at: datetime, row_id: int) -> None:
    with pytest.raises(ValidationFailed):
        decode_id_cursor(encode_cursor(at, row_id))
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_id_cursor(row_id))


def test_a_page_with_rows_beyond_the_limit_keeps_the_limit_and_points_after_its_last_row() -> None:
    rows = [10, 9, 8, 7]
    page = page_of(rows, 3, key=lambda row: row)
    assert page.rows == [10, 9, 8]
    assert page.next_cursor is not None and decode_id_cursor(page.next_cursor) == 8


@pytest.mark.parametrize("fetched", [0, 2, 3])
def test_a_page_without_more_rows_than_the_limit_is_the_last(fetched: int) -> None:
    page = page_of(list(range(1, fetched + 1)), 3, key=lambda row: row)
    assert page.rows == list(range(1, fetched + 1))
    assert page.next_cursor is None


def test_a_timed_page_points_after_the_timestamp_and_id_of_its_last_row() -> None:
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rows = [(at + timedelta(seconds=n), n) for n in range(1, 5)]
    page = page_of(rows, 2, key=lambda row: row)
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == rows[1]
    assert page.document(lambda row: row[1]) == {"items": [1, 2], "next_cursor": page.next_cursor}


def test_a_page_is_fetched_with_one_row_more_than_it_shows() -> None:
    assert rows_to_fetch(50) == 51


# Sorted positions: listings a client can order by one of several named sorts --------------------

# What sort keys are: times, charge numbers, quantities (printable ASCII, at most 32 characters).
keys = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=32)


@given(key=keys, row_id=ids)
def test_a_sorted_cursor_stands_for_the_same_key_and_id_under_its_sort(key: str, row_id: int) -> None:
    cursor = encode_sorted_cursor(SortedPosition("-charge_number", key, row_id))
    assert decode_sorted_cursor(cursor, "-charge_number", str) == (key, row_id)
    assert len(cursor) <= 200


def test_a_cursor_of_one_sort_is_refused_under_another_and_says_so() -> None:
    cursor = encode_sorted_cursor(SortedPosition("quantity", "12.500", 7))
    with pytest.raises(ValidationFailed) as raised:
        decode_sorted_cursor(cursor, "-quantity", str)
    assert raised.value.status == 422
    (error,) = raised.value.extra["errors"]
    assert error["type"] == "cursor_sort_mismatch"
    assert "sort=quantity" in error["message"] and "sort=-quantity" in error["message"]


@pytest.mark.parametrize(
    "cursor",
    [
        forged([CURSOR_VERSION, "quantity", "1.000", 2**63]),
        forged([CURSOR_VERSION, "quantity", "1.000", 0]),
        forged([CURSOR_VERSION, "quantity", "1.000", "1"]),
        forged([CURSOR_VERSION, "quantity", 1.0, 1]),  # the key is always text
        forged([CURSOR_VERSION, 5, "1.000", 1]),
        forged([CURSOR_VERSION + 1, "quantity", "1.000", 1]),
        forged([CURSOR_VERSION, "quantity", "not a quantity", 1]),  # the key reader refuses it
        forged([CURSOR_VERSION, AT, 1]),  # a timed cursor
        forged([CURSOR_VERSION, 1]),  # an id cursor
    ],
)
def test_a_sorted_cursor_the_server_did_not_issue_is_a_422(cursor: str) -> None:
    def quantity(text: str) -> float:
        if text != "1.000":
            raise ValueError(text)
        return 1.0

    with pytest.raises(ValidationFailed) as raised:
        decode_sorted_cursor(cursor, "quantity", quantity)
    assert raised.value.extra["errors"][0]["type"] == "cursor_invalid"


def test_sorted_cursors_are_refused_where_timed_or_id_cursors_belong() -> None:
    cursor = encode_sorted_cursor(SortedPosition("produced_at", AT, 1))
    for decode in (decode_cursor, decode_id_cursor):
        with pytest.raises(ValidationFailed):
            decode(cursor)


def test_a_sorted_page_points_after_the_sort_key_and_id_of_its_last_row() -> None:
    page = page_of([("B", 2), ("C", 1), ("D", 3)], 2, key=lambda row: SortedPosition("name", *row))
    assert page.next_cursor is not None
    assert decode_sorted_cursor(page.next_cursor, "name", str) == ("C", 1)


def test_an_instant_key_reads_back_as_the_same_instant() -> None:
    at = datetime(2026, 3, 1, 7, 30, tzinfo=timezone(timedelta(hours=1)))
    assert parse_instant(instant_key(at)) == at
    with pytest.raises(ValueError):
        parse_instant("2026-03-01T06:30:00")


# Finding the next cursor of a page document (for its Link header) ----------------------------------


@pytest.mark.parametrize(
    "cursor", [None, encode_id_cursor(5), encode_sorted_cursor(SortedPosition("x", "y" * 32, MAX_ID))]
)
def test_the_next_cursor_is_read_from_the_end_of_a_page_as_sent(cursor: str | None) -> None:
    page = KeysetPage([{"next_cursor": "an item's field, not the page's"}], cursor)
    for extra in ({}, {"total": 12}):
        document = page.document(lambda row: row, **extra)
        assert list(document)[-1] == "next_cursor"
        assert next_cursor_of(orjson.dumps(document)) == cursor
        assert next_cursor_of(document) == cursor


def test_the_next_cursor_of_a_document_written_otherwise_is_found_by_parsing_it() -> None:
    assert next_cursor_of(b'{"next_cursor": "abc", "items": []}') == "abc"
    assert next_cursor_of(b'{"items": [], "next_cursor": null}\n') is None


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00"])
def test_a_cursor_time_outside_the_utc_range_is_a_422(text: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(forged([CURSOR_VERSION, text, 1]))
    with pytest.raises(ValidationFailed):
        decode_sorted_cursor(forged([CURSOR_VERSION, "-produced_at", text, 1]), "-produced_at", parse_instant)
