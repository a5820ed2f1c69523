"""Cache tags of the quality package: which cached reads a write can affect.

Reads over one product (its summary, its specs) carry that product's tag; reads over every product
carry ``ALL_PRODUCTS``; reads of one charge's series (its measurement pages, its control charts) carry
the charge's series tag, and control charts the limits tag of their (product, parameter) too; charts
over a product's series carry the product's tag and its limits tag. Attribute inspections have tags of
their own, per charge (its list) and per product (its attribute charts). Reads that depend on a charge
existing (or on its number and production time) also carry the charges package's tag for that charge
or product list, so deleting a charge (which deletes its measurements) invalidates them.
"""

from __future__ import annotations

from collections.abc import Iterable

from erp_api.charges import cache_tags as charge_tags

ALL_PRODUCTS = "quality:products:all"


def product_tag(product_sku: str) -> str:
    return f"quality:product:{product_sku}"


def series_tag(charge_id: int) -> str:
    return f"quality:charge:{charge_id}"


def limits_tag(product_sku: str, parameter: str) -> str:
    """Reads that show a series' stored control limits (its control charts)."""
    return f"quality:limits:{product_sku}:{parameter}"


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


def product_series_tags(product_sku: str, parameter: str) -> list[str]:
    """A chart over a product's series (all its charges): the series' measurements and spec, the
    order, numbers and existence of the product's charges, and the series' stored control limits."""
    return [
        product_tag(product_sku),
        charge_tags.list_tag(product_sku=product_sku, line=None, status=None),
        limits_tag(product_sku, parameter),
    ]


def inspections_tag(charge_id: int) -> str:
    """Reads of one charge's attribute inspections (its list)."""
    return f"quality:inspections:charge:{charge_id}"


def product_inspections_tag(product_sku: str) -> str:
    """Reads of a product's attribute inspections (its attribute charts)."""
    return f"quality:inspections:product:{product_sku}"


def charge_inspection_tags(charge_id: int) -> list[str]:
    return [inspections_tag(charge_id), charge_tags.charge_tag(charge_id)]


def attribute_chart_tags(product_sku: str) -> list[str]:
    """An attribute chart: the product's inspections, and the numbers and existence of its charges."""
    return [
        product_inspections_tag(product_sku),
        charge_tags.list_tag(product_sku=product_sku, line=None, status=None),
    ]


def tags_for_inspection(charge_id: int, product_sku: str) -> list[str]:
    """Every tag whose reads could include a new inspection of this charge."""
    return [inspections_tag(charge_id), product_inspections_tag(product_sku)]


ALERT_LISTS = "quality:alerts"


def alert_tag(alert_id: int) -> str:
    """Reads of one quality alert."""
    return f"quality:alert:{alert_id}"


def alert_list_tags() -> list[str]:
    """Listings of alerts (any filter): a new alert or a moved one can appear in any of them."""
    return [ALERT_LISTS]


def tags_for_alert_change(alert_id: int) -> list[str]:
    return [ALERT_LISTS, alert_tag(alert_id)]
