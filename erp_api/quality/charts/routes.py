"""HTTP routes of the control charts (JSON and SVG), the capability picture and the rule catalogue.

An SVG answer keeps the API's closed Content-Security-Policy and admits exactly the style sheet of
the picture by its hash (``chart_builder.svg_style_sources``): opened directly in a browser, the
picture draws its lines and markers, and nothing else may load or run.
"""

from __future__ import annotations

from dataclasses import asdict

import orjson
from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, read_query
from erp_api.openapi import Operation, describe
from erp_api.quality.charts.builder import svg_style_sources
from erp_api.quality.charts.schemas import CapabilityQuery, ControlChartOut, RuleCatalogue
from erp_api.quality.charts.service import CAPABILITY_POINTS
from erp_api.quality.schemas import MAX_CHART_POINTS, ControlChartQuery
from erp_api.quality.spc.catalogue import rule_catalogue
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.headers import CONTENT_SECURITY_POLICY
from erp_api.security.roles import Role

TAG = "quality"
SVG_MEDIA_TYPE = "image/svg+xml"
# The catalogue is fixed at import: one serialization for every request.
RULE_CATALOGUE = orjson.dumps({"items": [asdict(rule) for rule in rule_catalogue()]})
_CHARTS = (
    "imr, ewma, cusum of one charge (charge_id) or a product (product_sku) and parameter; xbar_r, "
    "xbar_s of a product's subgroups (one per charge in production order, or subgroup_size values); "
    "p, np, c, u of a product's inspections of a characteristic"
)


def svg_response(document: bytes) -> Response:
    """An SVG picture, under the API's policy widened only to the picture's own style sheet."""
    policy = f"{CONTENT_SECURITY_POLICY}; style-src {svg_style_sources(document)}"
    return Response(document, media_type=SVG_MEDIA_TYPE, headers={"Content-Security-Policy": policy})


@describe(
    Operation(
        f"Control chart with limits and rule violations: {_CHARTS}; at most {MAX_CHART_POINTS:,} "
        "values, subgroups or samples",
        TAG,
        query=ControlChartQuery,
        responses={200: ControlChartOut},
        errors=(404,),
    )
)
async def chart(request: Request) -> Response:
    query = read_query(request, ControlChartQuery)
    return json_response(await resources(request).charts.document(query))


@describe(
    Operation(
        "The control chart as an SVG picture (the same parameters as the control chart)",
        TAG,
        query=ControlChartQuery,
        responses={200: None},
        produces={200: SVG_MEDIA_TYPE},
        errors=(404,),
    )
)
async def chart_picture(request: Request) -> Response:
    query = read_query(request, ControlChartQuery)
    return svg_response(await resources(request).charts.picture(query))


@describe(
    Operation(
        f"Capability picture of a product's parameter against its spec, from its latest "
        f"{CAPABILITY_POINTS:,} non-voided values: histogram, spec limits, target, fitted normal curves "
        "(within and overall), the indices",
        TAG,
        query=CapabilityQuery,
        responses={200: None},
        produces={200: SVG_MEDIA_TYPE},
        errors=(404,),
    )
)
async def capability_picture(request: Request) -> Response:
    query = read_query(request, CapabilityQuery)
    return svg_response(await resources(request).charts.capability_picture(query))


@describe(
    Operation(
        "Every run rule the control charts check: id, name, description, definition, parameters, charts",
        TAG,
        responses={200: RuleCatalogue},
    )
)
async def list_rules(request: Request) -> Response:
    return json_response(RULE_CATALOGUE)


routes = [
    Endpoint("/quality/control-chart", chart, "GET", Role.VIEWER),
    Endpoint("/quality/control-chart.svg", chart_picture, "GET", Role.VIEWER),
    Endpoint("/quality/capability.svg", capability_picture, "GET", Role.VIEWER),
    Endpoint("/quality/rules", list_rules, "GET", Role.VIEWER),
]
