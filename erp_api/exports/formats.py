"""How an export's rows are written: CSV (RFC 4180) for spreadsheets, NDJSON for programs.

CSV conventions, stated once here:

- UTF-8, with a byte order mark first unless ``bom=false``: spreadsheet programs read a CSV file
  without one in the machine's legacy code page, and "Linie Süd" would arrive garbled. Programs
  read it with the ``utf-8-sig`` codec (Python), or skip U+FEFF.
- A header row of the column names, then one record per row; records end with CRLF; a field is
  quoted only when it holds a comma, a double quote (doubled inside) or a line break (the csv
  module's minimal quoting, as RFC 4180 has it).
- Times in ISO 8601 in UTC (``2026-03-01T05:00:00+00:00``, microseconds when there are any);
  quantities with their 3 decimal places; measured values in plain decimal notation, never with an
  exponent (``0.00000015``, not ``1.5e-07``), as shortest round-trip text; booleans ``true``/``false``;
  lists of ids separated by spaces; a missing value (null) is an empty field.
- Formula injection: a text field that people typed (number, SKU, unit, line, reasons, names) and
  that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a ``'``
  before it, so that a spreadsheet shows it as text instead of evaluating it as a formula (OWASP's
  advice). Numbers, times and ids are written by the server and left alone: a negative measured
  value stays a number.

NDJSON: one JSON object per row and line (``\\n``), with the same names and the API's JSON forms
(times as ISO 8601 strings, quantities as strings, measured values as numbers, ids as arrays).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any, Final, Protocol

import orjson

from erp_api.exports.columns import AnyRow, Column, Kind

BOM: Final = "\ufeff".encode()
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
NDJSON_MEDIA_TYPE: Final = "application/x-ndjson"


class ExportFormat(Protocol):
    """Writes an export: what goes before the first row, then rows chunk by chunk, as bytes."""

    media_type: str
    extension: str

    def begin(self, columns: Sequence[Column]) -> bytes: ...

    def rows(self, columns: Sequence[Column], rows: Sequence[AnyRow]) -> bytes: ...


def guard_formula(text: str) -> str:
    """``text`` made inert for a spreadsheet: prefixed with ``'`` if it would start a formula."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def plain_number(value: float) -> str:
    """The shortest text that reads back as ``value``, in plain decimal notation (no exponent)."""
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


def _csv_text(kind: Kind) -> Callable[[Any], str]:
    writers: dict[Kind, Callable[[Any], str]] = {
        Kind.INTEGER: str,
        Kind.TEXT: guard_formula,
        Kind.TIME: lambda value: value.astimezone(UTC).isoformat(),
        Kind.QUANTITY: lambda value: f"{value:.3f}",
        Kind.NUMBER: plain_number,
        Kind.BOOLEAN: lambda value: "true" if value else "false",
        Kind.IDS: lambda value: " ".join(str(item) for item in value),
    }
    write = writers[kind]
    return lambda value: "" if value is None else write(value)


def _json_value(kind: Kind) -> Callable[[Any], Any]:
    if kind is Kind.QUANTITY:
        return lambda value: None if value is None else f"{value:.3f}"
    if kind is Kind.TIME:
        return lambda value: None if value is None else value.astimezone(UTC)
    return lambda value: value


class CsvFormat:
    """RFC 4180 CSV with a header row (see the module's docstring)."""

    media_type = CSV_MEDIA_TYPE
    extension = "csv"

    def __init__(self, *, bom: bool = True) -> None:
        self._bom = bom

    def begin(self, columns: Sequence[Column]) -> bytes:
        header = self._records([[column.name for column in columns]])
        return BOM + header if self._bom else header

    def rows(self, columns: Sequence[Column], rows: Sequence[AnyRow]) -> bytes:
        cells = [(column.value, _csv_text(column.kind)) for column in columns]
        return self._records([[text(value(row)) for value, text in cells] for row in rows])

    @staticmethod
    def _records(records: list[list[str]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(records)
        return buffer.getvalue().encode()


class NdjsonFormat:
    """Newline-delimited JSON: one object per row (see the module's docstring)."""

    media_type = NDJSON_MEDIA_TYPE
    extension = "ndjson"

    def begin(self, columns: Sequence[Column]) -> bytes:
        return b""

    def rows(self, columns: Sequence[Column], rows: Sequence[AnyRow]) -> bytes:
        fields = [(column.name, column.value, _json_value(column.kind)) for column in columns]
        return b"".join(
            orjson.dumps(
                {name: json(value(row)) for name, value, json in fields}, option=orjson.OPT_APPEND_NEWLINE
            )
            for row in rows
        )
