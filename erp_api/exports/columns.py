"""The columns of each export: their names, in order, and what kind of value each holds.

The names and values are the list endpoints' (``charge_dict``, ``measurement_dict``, ``alert_dict``),
flattened to one level so that a row is a spreadsheet line; measurements add their charge's number,
alerts their 3-sigma control limits (``lcl``, ``ucl``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter
from typing import Any

from erp_api.quality.spc.chart import zone_line

# A row of an export as the owners' repositories read it (``ChargeRepository.export_chunk``,
# ``MeasurementRepository.export_chunk``, ``AlertRepository.export_chunk``): a result row or a named
# tuple, its fields read by name.
AnyRow = Any


class Kind(Enum):
    """How a value is written (``formats``): each kind has one text form and one JSON form."""

    INTEGER = "integer"
    TEXT = "text"  # what people typed: guarded against formula injection in CSV
    TIME = "time"  # ISO 8601 in UTC
    QUANTITY = "quantity"  # a decimal with 3 places, as text in both formats (as the API sends it)
    NUMBER = "number"  # a measured double: plain decimal text in CSV, a JSON number in NDJSON
    BOOLEAN = "boolean"
    IDS = "ids"  # a list of ids: space-separated in CSV, a JSON array in NDJSON


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    value: Callable[[AnyRow], Any]


def column(name: str, kind: Kind, value: Callable[[AnyRow], Any] | None = None) -> Column:
    """A column read from the row's field of the same name unless ``value`` says otherwise."""
    return Column(name, kind, value or attrgetter(name))


def _control_limit(index: int) -> Callable[[AnyRow], float]:
    return lambda row: zone_line(row.center, row.sigma, 3)[index]


CHARGE_COLUMNS = (
    column("id", Kind.INTEGER),
    column("charge_number", Kind.TEXT),
    column("product_sku", Kind.TEXT),
    column("quantity", Kind.QUANTITY),
    column("unit", Kind.TEXT),
    column("line", Kind.TEXT),
    column("status", Kind.TEXT),
    column("produced_at", Kind.TIME),
    column("created_at", Kind.TIME),
    column("updated_at", Kind.TIME),
    column("version", Kind.INTEGER),
)
MEASUREMENT_COLUMNS = (
    column("id", Kind.INTEGER),
    column("charge_id", Kind.INTEGER),
    column("charge_number", Kind.TEXT),
    column("product_sku", Kind.TEXT),
    column("parameter", Kind.TEXT),
    column("value", Kind.NUMBER),
    column("measured_at", Kind.TIME),
    column("created_at", Kind.TIME),
    column("voided", Kind.BOOLEAN, lambda row: row.voided_at is not None),
    column("voided_at", Kind.TIME),
    column("void_reason", Kind.TEXT),
    column("voided_by", Kind.TEXT),
)
ALERT_COLUMNS = (
    column("id", Kind.INTEGER),
    column("charge_id", Kind.INTEGER),
    column("product_sku", Kind.TEXT),
    column("parameter", Kind.TEXT),
    column("rule", Kind.TEXT),
    column("status", Kind.TEXT),
    column("measurement_id", Kind.INTEGER),
    column("measurement_ids", Kind.IDS),
    column("limits_id", Kind.INTEGER),
    column("center", Kind.NUMBER),
    column("sigma", Kind.NUMBER),
    column("lcl", Kind.NUMBER, _control_limit(0)),
    column("ucl", Kind.NUMBER, _control_limit(1)),
    column("reason", Kind.TEXT),
    column("opened_at", Kind.TIME),
    column("updated_at", Kind.TIME),
    column("changed_by", Kind.TEXT),
)
