"""How values are written: numbers without exponents, inert text, minimal RFC 4180 quoting."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_api.exports.columns import Kind, column
from erp_api.exports.formats import CsvFormat, NdjsonFormat, guard_formula, plain_number

COLUMNS = (
    column("text", Kind.TEXT),
    column("at", Kind.TIME),
    column("quantity", Kind.QUANTITY),
    column("value", Kind.NUMBER),
    column("flag", Kind.BOOLEAN),
    column("ids", Kind.IDS),
    column("n", Kind.INTEGER),
)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_is_written_in_plain_notation_that_reads_back_exactly(value: float) -> None:
    text = plain_number(value)
    assert "e" not in text.lower()
    assert float(text) == value


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("Linie Süd", "Linie Süd"),
        ("", ""),
    ],
)
def test_text_that_would_start_a_formula_is_made_inert(text: str, written: str) -> None:
    assert guard_formula(text) == written


def test_a_row_is_written_with_minimal_quoting_and_crlf() -> None:
    row = SimpleNamespace(
        text='say "hi", then\nleave',
        at=datetime(2026, 3, 1, 6, 0, 0, 250, tzinfo=timezone(timedelta(hours=1))),
        quantity=Decimal("1250.5"),
        value=-0.000001,
        flag=True,
        ids=[3, 4],
        n=None,
    )
    written = CsvFormat(bom=False).rows(COLUMNS, [row])  # type: ignore[list-item]
    assert written == (
        b'"say ""hi"", then\nleave",2026-03-01T05:00:00.000250+00:00,1250.500,-0.000001,true,3 4,\r\n'
    )
    (record,) = csv.reader(io.StringIO(written.decode(), newline=""))
    assert record[0] == 'say "hi", then\nleave'


def test_the_csv_header_starts_with_a_byte_order_mark_by_default() -> None:
    assert CsvFormat().begin(COLUMNS) == b"\xef\xbb\xbftext,at,quantity,value,flag,ids,n\r\n"
    assert CsvFormat(bom=False).begin(COLUMNS) == b"text,at,quantity,value,flag,ids,n\r\n"


def test_an_ndjson_line_holds_json_values_in_the_apis_forms() -> None:
    row = SimpleNamespace(
        text="=x",
        at=datetime(2026, 3, 1, tzinfo=UTC),
        quantity=Decimal("2"),
        value=1e-7,
        flag=False,
        ids=[1],
        n=5,
    )
    line = NdjsonFormat().rows(COLUMNS, [row])  # type: ignore[list-item]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == {
        "text": "=x",  # not a spreadsheet: no guard
        "at": "2026-03-01T00:00:00+00:00",
        "quantity": "2.000",
        "value": 1e-7,
        "flag": False,
        "ids": [1],
        "n": 5,
    }
