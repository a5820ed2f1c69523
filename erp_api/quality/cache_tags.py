"""Cache tags of the quality package: which cached reads a write can affect.

Reads over one product (its summary, its specs) carry that product's tag; reads over every product
carry ``ALL_PRODUCTS``; reads of one charge's series (its measurement pages, its control charts) carry
the charge's series tag. Reads that depend on a charge existing also carry the charges package's tag
for that charge or product list, so deleting a charge (which deletes its measurements) invalidates them.
"""

from __future__ import annotations

from collections.abc import Iterable

from erp_api.charges import cache_tags as charge_tags

ALL_PRODUCTS = "quality:products:all"


def product_tag(product_sku: str) -> str:
    return f"quality:product:{product_sku}"


def series_tag(charge_id: int) -> str:
    return f"quality:charge:{charge_id}"


def summary_tags(product_sku: str | None) -> list[str]:
    """A summary of one product, or of all: its measurements, its specs, and its charges' existence."""
    if product_sku is None:
        return [ALL_PRODUCTS, charge_tags.list_tag(product_sku=None, line=None, status=None)]
    return [product_tag(product_sku), charge_tags.list_tag(product_sku=product_sku, line=None, status=None)]


def spec_list_tags(product_sku: str | None) -> list[str]:
    return [ALL_PRODUCTS if product_sku is None else product_tag(product_sku)]


def charge_series_tags(charge_id: int) -> list[str]:
    return [series_tag(charge_id), charge_tags.charge_tag(charge_id)]


def tags_for_measurements(series: Iterable[tuple[int, str]]) -> list[str]:
    """Every tag whose reads could include new measurements of these (charge_id, product_sku)."""
    tags = {ALL_PRODUCTS}
    for charge_id, product_sku in series:
        tags.add(product_tag(product_sku))
        tags.add(series_tag(charge_id))
    return sorted(tags)


def tags_for_spec(product_sku: str) -> list[str]:
    return [ALL_PRODUCTS, product_tag(product_sku)]
