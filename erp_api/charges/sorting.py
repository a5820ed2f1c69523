"""The keys of the charge list's sorts, as its cursors carry them: what a cursor holds of a charge,
and the reader that refuses any key the server did not write (422 via ``pagination``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from erp_api.charges.models import Charge
from erp_api.charges.schemas import CHARGE_NUMBER_PATTERN, ChargeSort
from erp_api.pagination import instant_key, parse_instant

_NUMBER: Final = re.compile(CHARGE_NUMBER_PATTERN)
# A quantity as the API writes it (documents.charge_dict): digits, a point, 3 decimals. Up to 15
# digits are accepted, a few more are allowed: SQLite keeps quantities as doubles, and near 10**15 one
# may round up to a 16-digit number.
_QUANTITY: Final = re.compile(r"[0-9]{1,18}\.[0-9]{3}")


def sort_key(sort: ChargeSort, charge: Charge) -> str:
    """``charge``'s key in ``sort`` as text: its number, its quantity, or its production time in UTC."""
    if sort.field == "charge_number":
        return charge.charge_number
    if sort.field == "quantity":
        return f"{charge.quantity:.3f}"
    return instant_key(charge.produced_at)


def key_parser(sort: ChargeSort) -> Callable[[str], Any]:
    """The reader of ``sort``'s keys (ValueError for anything ``sort_key`` does not write), giving
    the value the sorted column is compared with."""
    if sort.field == "charge_number":
        return _number
    if sort.field == "quantity":
        return _quantity
    return parse_instant


def _number(text: str) -> str:
    if not _NUMBER.fullmatch(text):
        raise ValueError("not a charge number")
    return text


def _quantity(text: str) -> Decimal:
    if not _QUANTITY.fullmatch(text):
        raise ValueError("not a quantity")
    return Decimal(text)
