"""HTTP routes of a spec's control limits: set by hand, compute from a baseline, read with history."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import json_response, read_json, validation_failed
from erp_api.openapi import Operation, describe
from erp_api.quality.documents import limits_dict
from erp_api.quality.limits.schemas import LimitsBody, LimitsComputeBody, LimitsHistory, LimitsOut
from erp_api.quality.schemas import SpecPath
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role

TAG = "quality"
LIMITS_PATH = "/quality/specs/{product_sku}/{parameter}/limits"


def _spec_path(request: Request) -> SpecPath:
    try:
        return SpecPath.model_validate(request.path_params)
    except ValidationError as exc:
        raise validation_failed(exc, "path") from None


@describe(
    Operation(
        "Set a spec's control limits by hand; they become current (UCL/LCL = center +/- 3 sigma)",
        TAG,
        body=LimitsBody,
        path=SpecPath,
        responses={201: LimitsOut},
        errors=(404, 413, 415),
    )
)
async def put_limits(request: Request) -> Response:
    ctx = resources(request)
    where = _spec_path(request)
    body = await read_json(request, LimitsBody, ctx.settings.max_body_bytes)
    limits = await ctx.limits.set_limits(where.product_sku, where.parameter, body)
    return json_response(limits_dict(limits), 201)


@describe(
    Operation(
        "Compute a spec's control limits from a baseline of non-voided points (time range or charges, "
        "at most 100,000 points): center = mean, sigma = MR-bar / 1.128; they become current",
        TAG,
        body=LimitsComputeBody,
        path=SpecPath,
        responses={201: LimitsOut},
        errors=(404, 413, 415),
    )
)
async def compute_limits(request: Request) -> Response:
    ctx = resources(request)
    where = _spec_path(request)
    body = await read_json(request, LimitsComputeBody, ctx.settings.max_body_bytes)
    limits = await ctx.limits.compute_limits(where.product_sku, where.parameter, body)
    return json_response(limits_dict(limits), 201)


@describe(
    Operation(
        "A spec's current control limits and their history, newest first",
        TAG,
        path=SpecPath,
        responses={200: LimitsHistory},
        errors=(404, 422),
    )
)
async def get_limits(request: Request) -> Response:
    where = _spec_path(request)
    return json_response(await resources(request).limits.limits_document(where.product_sku, where.parameter))


routes = [
    Endpoint(LIMITS_PATH, put_limits, "PUT", Role.QUALITY_MANAGER),
    Endpoint(f"{LIMITS_PATH}/compute", compute_limits, "POST", Role.QUALITY_MANAGER),
    Endpoint(LIMITS_PATH, get_limits, "GET", Role.VIEWER),
]
