"""HTTP routes of quality alerts: parse, call the service, shape the response."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, paged_response, path_int, read_json, read_query
from erp_api.openapi import Operation, describe
from erp_api.quality.alerts.schemas import AlertListQuery, AlertOut, AlertPage, AlertTransitionRequest
from erp_api.quality.alerts.service import alert_dict
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "quality"


@describe(
    Operation(
        "List quality alerts, newest first (filter by status, charge, product, parameter, rule)",
        TAG,
        query=AlertListQuery,
        responses={200: AlertPage},
    )
)
async def list_alerts(request: Request) -> Response:
    query = read_query(request, AlertListQuery)
    return paged_response(request, await resources(request).alerts.page(query))


@describe(Operation("Fetch a quality alert", TAG, responses={200: AlertOut}, errors=(404,)))
async def get_alert(request: Request) -> Response:
    return json_response(await resources(request).alerts.document(path_int(request, "id")))


@describe(
    Operation(
        "Move a quality alert on: acknowledged, action_proposed, resolved or dismissed",
        TAG,
        body=AlertTransitionRequest,
        responses={200: AlertOut},
        errors=(404, 409),
    )
)
async def transition_alert(request: Request) -> Response:
    ctx = resources(request)
    alert_id = path_int(request, "id")
    data = await read_json(request, AlertTransitionRequest, ctx.settings.max_body_bytes)
    alert = await ctx.alerts.transition(alert_id, data.to, data.reason)
    return json_response(alert_dict(alert))


routes = [
    Endpoint("/quality/alerts", list_alerts, "GET", Role.VIEWER),
    Endpoint("/quality/alerts/{id}", get_alert, "GET", Role.VIEWER),
    # Decisions on quality.
    Endpoint("/quality/alerts/{id}/transitions", transition_alert, "POST", Role.QUALITY_MANAGER),
]
