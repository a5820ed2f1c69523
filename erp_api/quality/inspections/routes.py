"""HTTP routes of attribute inspections: record one on a charge, list a charge's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, paged_response, path_int, read_json, read_query
from erp_api.openapi import Operation, describe
from erp_api.quality.documents import inspection_dict
from erp_api.quality.inspections.schemas import (
    InspectionIn,
    InspectionListQuery,
    InspectionOut,
    InspectionPage,
)
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "quality"


@describe(
    Operation(
        "Record an attribute inspection of a charge: inspected items and nonconforming ones (p, np "
        "charts), or inspection units and nonconformities (c, u charts); 409 once the charge is "
        "released or rejected",
        TAG,
        body=InspectionIn,
        responses={201: InspectionOut},
        errors=(404, 409, 413, 415),
        example={"characteristic": "scratches", "inspected": 50, "nonconforming": 3},
    )
)
async def post_inspection(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    body = await read_json(request, InspectionIn, ctx.settings.max_body_bytes)
    inspection = await ctx.inspections.record(charge_id, body)
    return json_response(inspection_dict(inspection), 201)


@describe(
    Operation(
        "List a charge's attribute inspections, oldest first",
        TAG,
        query=InspectionListQuery,
        responses={200: InspectionPage},
        errors=(404,),
    )
)
async def list_inspections(request: Request) -> Response:
    charge_id = path_int(request, "id")
    query = read_query(request, InspectionListQuery)
    return paged_response(request, await resources(request).inspections.page(charge_id, query))


routes = [
    Endpoint("/charges/{id}/inspections", post_inspection, "POST", Role.OPERATOR),
    Endpoint("/charges/{id}/inspections", list_inspections, "GET", Role.VIEWER),
]
