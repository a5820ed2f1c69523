"""Cache tags of the charges package: which cached reads a change to a charge can affect.

A list is tagged by the most selective filter it uses (product, then line, then status, else "all"),
so a write invalidates only the lists whose filter values the charge had before or has after it.
A lookup is tagged by the hash buckets of the numbers it asked for, which keeps its tag count bounded.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from erp_api.charges.models import Charge

LOOKUP_BUCKETS = 64


@dataclass(frozen=True, slots=True)
class ChargeFacets:
    """The values of a charge that decide which cached reads contain it, taken before a change."""

    id: int
    charge_number: str
    product_sku: str
    line: str
    status: str

    @classmethod
    def of(cls, charge: Charge) -> ChargeFacets:
        return cls(charge.id, charge.charge_number, charge.product_sku, charge.line, charge.status)


def charge_tag(charge_id: int) -> str:
    return f"charge:{charge_id}"


def list_tag(*, product_sku: str | None, line: str | None, status: str | None) -> str:
    if product_sku is not None:
        return f"charges:list:product:{product_sku}"
    if line is not None:
        return f"charges:list:line:{line}"
    if status is not None:
        return f"charges:list:status:{status}"
    return "charges:list:all"


def list_tags(*, product_sku: str | None, line: str | None, statuses: Iterable[str]) -> list[str]:
    """The tags of a list (its pages, its total) filtered by any of several statuses: each status's
    tag, unless a product or line filter is more selective. Other filters (number prefix, time
    range) do not narrow the tag: such a list is invalidated with every list it is part of."""
    if product_sku is not None or line is not None:
        return [list_tag(product_sku=product_sku, line=line, status=None)]
    statuses = sorted(set(statuses))
    if not statuses:
        return [list_tag(product_sku=None, line=None, status=None)]
    return [list_tag(product_sku=None, line=None, status=status) for status in statuses]


def overview_tags() -> list[str]:
    """Counts over every charge (the products and lines overviews): any charge write changes them."""
    return [list_tag(product_sku=None, line=None, status=None)]


def lookup_bucket_tag(number: str) -> str:
    return f"charges:lookup:{zlib.crc32(number.encode()) % LOOKUP_BUCKETS}"


def lookup_tags(numbers: Iterable[str]) -> list[str]:
    return sorted({lookup_bucket_tag(number) for number in numbers})


def tags_for_change(*states: ChargeFacets | None) -> list[str]:
    """Every tag whose entries could contain any of the given states of charges (before and after)."""
    tags = {"charges:list:all"}
    for charge in states:
        if charge is None:
            continue
        tags.add(charge_tag(charge.id))
        tags.add(f"charges:list:product:{charge.product_sku}")
        tags.add(f"charges:list:line:{charge.line}")
        tags.add(f"charges:list:status:{charge.status}")
        tags.add(lookup_bucket_tag(charge.charge_number))
    return sorted(tags)
