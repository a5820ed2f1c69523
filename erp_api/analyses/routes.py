"""HTTP routes of anomaly analyses: submit one for a charge, follow its status, list a charge's."""

from __future__ import annotations

import re

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from erp_api.analyses.documents import accepted_dict, analysis_dict, status_url
from erp_api.analyses.schemas import (
    AnalysisAccepted,
    AnalysisCreate,
    AnalysisListQuery,
    AnalysisOut,
    AnalysisPage,
)
from erp_api.errors import ValidationFailed
from erp_api.http import json_response, paged_response, path_int, read_json, read_query
from erp_api.observability.request_id import current_request_id
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "analyses"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key(request: Request) -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(raw):
        message = "1 to 200 visible ASCII characters"
        raise ValidationFailed(
            f"header.{IDEMPOTENCY_HEADER}: {message}",
            [
                {
                    "field": f"header.{IDEMPOTENCY_HEADER}",
                    "message": message,
                    "type": "string_pattern_mismatch",
                }
            ],
        )
    return raw


@describe(
    Operation(
        "Start an anomaly analysis of a charge's measurements (runs in the background)",
        TAG,
        body=AnalysisCreate,
        responses={202: AnalysisAccepted},
        errors=(404, 413, 415),
        response_headers={202: ("Location", "Idempotent-Replayed")},
        example={"rules": "western_electric", "baseline": {"diameter_mm": {"center": 10.0, "sigma": 0.01}}},
        headers={
            IDEMPOTENCY_HEADER: "Repeating a key returns the analysis the first request created (202); "
            "the same key with a different request is a 422"
        },
    )
)
async def submit_analysis(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    key = idempotency_key(request)
    data = await read_json(request, AnalysisCreate, ctx.settings.max_body_bytes)
    submission = await ctx.analyses.submit(
        charge_id, data, idempotency_key=key, request_id=current_request_id(), publish=False
    )
    analysis = submission.analysis
    headers = {"Location": status_url(analysis.id)}
    if not submission.created:
        headers["Idempotent-Replayed"] = "true"
    response = json_response(accepted_dict(analysis), 202, headers)
    if submission.created:
        # The analysis is committed, so the 202 need not wait for the broker: publish right after
        # the response (a publish that fails or never happens is redone by the reaper).
        response.background = BackgroundTask(ctx.analyses.publish, analysis.id)
    return response


@describe(
    Operation(
        "A charge's analyses, newest first",
        TAG,
        query=AnalysisListQuery,
        responses={200: AnalysisPage},
        errors=(404,),
    )
)
async def list_analyses(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    query = read_query(request, AnalysisListQuery)
    return paged_response(request, await ctx.analyses.page(charge_id, query), {"Cache-Control": "no-store"})


@describe(
    Operation(
        "An analysis: its status and, once succeeded, its result",
        TAG,
        responses={200: AnalysisOut},
        errors=(404,),
    )
)
async def get_analysis(request: Request) -> Response:
    analysis = await resources(request).analyses.get(path_int(request, "id"))
    return json_response(analysis_dict(analysis), headers={"Cache-Control": "no-store"})


routes = [
    Endpoint("/charges/{id}/analyses", submit_analysis, "POST", Role.QUALITY_MANAGER),
    Endpoint("/charges/{id}/analyses", list_analyses, "GET", Role.VIEWER),
    Endpoint("/analyses/{id}", get_analysis, "GET", Role.VIEWER),
]
