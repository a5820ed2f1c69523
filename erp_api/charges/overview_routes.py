"""HTTP routes of the products and lines overviews: every product (line) with its charge counts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.charges.schemas import LineList, ProductList
from erp_api.http import json_response
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "charges"


@describe(
    Operation(
        "Every product that has charges, with its charges counted by status (at most 1,000)",
        TAG,
        responses={200: ProductList},
    )
)
async def list_products(request: Request) -> Response:
    return json_response(await resources(request).charge_overview.document("product_sku"))


@describe(
    Operation(
        "Every production line that has charges, with its charges counted by status (at most 1,000)",
        TAG,
        responses={200: LineList},
    )
)
async def list_lines(request: Request) -> Response:
    return json_response(await resources(request).charge_overview.document("line"))


routes = [
    Endpoint("/products", list_products, "GET", Role.VIEWER),
    Endpoint("/lines", list_lines, "GET", Role.VIEWER),
]
