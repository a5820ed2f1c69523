"""HTTP routes of the quality package: parse, call the service, shape the response."""

from __future__ import annotations

import re

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import (
    json_response,
    paged_response,
    parse_json,
    path_int,
    read_json,
    read_json_body,
    read_query,
    validation_failed,
)
from erp_api.openapi import Operation, describe
from erp_api.quality.documents import measurement_dict, spec_dict
from erp_api.quality.schemas import (
    MeasurementBatchIn,
    MeasurementCreated,
    MeasurementIn,
    MeasurementListQuery,
    MeasurementOut,
    MeasurementPage,
    MeasurementPost,
    SpecBody,
    SpecListQuery,
    SpecOut,
    SpecPage,
    SpecPath,
    SummaryQuery,
    VoidBody,
)
from erp_api.quality.summaries.schemas import MAX_TREND_PERIODS, SummaryOut, TrendOut, TrendQuery
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.body_limit import BodyLimit
from erp_api.security.roles import Role

TAG = "quality"
# A batch is the object whose only member is "items"; anything else is parsed as one measurement,
# so the errors name the fields of the shape the client meant.
_BATCH_BODY = re.compile(rb'\A\s*\{\s*"items"\s*:')


@describe(
    Operation(
        "Create or replace the spec of a product's parameter: limits, run rules, auto-hold "
        "(its unit is fixed once the series has measurements: 409)",
        TAG,
        body=SpecBody,
        path=SpecPath,
        responses={200: SpecOut, 201: SpecOut},
        errors=(409, 413, 415),
        example={
            "unit": "mm",
            "lsl": 9.95,
            "usl": 10.05,
            "target": 10.0,
            "rules": "nelson",
            "auto_hold": True,
        },
    )
)
async def put_spec(request: Request) -> Response:
    ctx = resources(request)
    try:
        where = SpecPath.model_validate(request.path_params)
    except ValidationError as exc:
        raise validation_failed(exc, "path") from None
    body = await read_json(request, SpecBody, ctx.settings.max_body_bytes)
    spec, created = await ctx.quality.put_spec(where.product_sku, where.parameter, body)
    return json_response(spec_dict(spec), 201 if created else 200)


@describe(Operation("List specs, oldest first", TAG, query=SpecListQuery, responses={200: SpecPage}))
async def list_specs(request: Request) -> Response:
    query = read_query(request, SpecListQuery)
    return paged_response(request, await resources(request).quality.spec_page(query))


@describe(
    Operation(
        "Fetch the spec of a product's parameter", TAG, path=SpecPath, responses={200: SpecOut}, errors=(404,)
    )
)
async def get_spec(request: Request) -> Response:
    try:
        where = SpecPath.model_validate(request.path_params)
    except ValidationError as exc:
        raise validation_failed(exc, "path") from None
    return json_response(await resources(request).quality.spec_document(where.product_sku, where.parameter))


@describe(
    Operation(
        "Record one measurement of a charge, or a batch of up to 10,000; 201 once durably stored",
        TAG,
        body=MeasurementPost,
        responses={201: MeasurementCreated},
        errors=(404, 409, 413, 415, 503),
        example={"parameter": "diameter_mm", "value": 10.012, "measured_at": "2026-03-01T06:30:00Z"},
    )
)
async def post_measurements(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    body = await read_json_body(request, ctx.settings.max_batch_body_bytes)
    if _BATCH_BODY.match(body):
        batch = parse_json(body, MeasurementBatchIn)
        count = await ctx.quality.record_batch(charge_id, batch)
        return json_response({"charge_id": charge_id, "count": count}, 201)
    stored = await ctx.quality.record(charge_id, parse_json(body, MeasurementIn))
    return json_response(measurement_dict(stored), 201)


@describe(
    Operation(
        "List a charge's measurements, oldest first",
        TAG,
        query=MeasurementListQuery,
        responses={200: MeasurementPage},
        errors=(404,),
    )
)
async def list_measurements(request: Request) -> Response:
    charge_id = path_int(request, "id")
    query = read_query(request, MeasurementListQuery)
    return paged_response(request, await resources(request).quality.measurement_page(charge_id, query))


@describe(
    Operation(
        "Void a measurement: it stays listed, and counts in no summary, chart, limits or rule check",
        TAG,
        body=VoidBody,
        responses={200: MeasurementOut},
        errors=(404, 409, 413, 415),
    )
)
async def void_measurement(request: Request) -> Response:
    ctx = resources(request)
    measurement_id = path_int(request, "id")
    body = await read_json(request, VoidBody, ctx.settings.max_body_bytes)
    measurement = await ctx.quality.void_measurement(measurement_id, body.reason)
    return json_response(measurement_dict(measurement))


@describe(
    Operation(
        "Statistics and capability (Cp, Cpk, Pp, Ppk, Cpm, PPM, normality, histogram) per product and "
        "parameter, or per charge",
        TAG,
        query=SummaryQuery,
        responses={200: SummaryOut},
    )
)
async def summary(request: Request) -> Response:
    query = read_query(request, SummaryQuery)
    return paged_response(request, await resources(request).quality.summary(query))


@describe(
    Operation(
        "Trend of a product's parameter per hour, day or week: n, mean, std, min, max, out of spec, Cpk "
        f"(at most {MAX_TREND_PERIODS} periods)",
        TAG,
        query=TrendQuery,
        responses={200: TrendOut},
    )
)
async def trend(request: Request) -> Response:
    query = read_query(request, TrendQuery)
    return json_response(await resources(request).quality.trend(query))


routes = [
    Endpoint("/quality/specs", list_specs, "GET", Role.VIEWER),
    Endpoint("/quality/specs/{product_sku}/{parameter}", put_spec, "PUT", Role.QUALITY_MANAGER),
    Endpoint("/quality/specs/{product_sku}/{parameter}", get_spec, "GET", Role.VIEWER),
    Endpoint("/quality/summary", summary, "GET", Role.VIEWER),
    Endpoint("/quality/trend", trend, "GET", Role.VIEWER),
    Endpoint("/charges/{id}/measurements", post_measurements, "POST", Role.OPERATOR, body=BodyLimit.BATCH),
    Endpoint("/charges/{id}/measurements", list_measurements, "GET", Role.VIEWER),
    Endpoint("/measurements/{id}/void", void_measurement, "POST", Role.QUALITY_MANAGER),
]
