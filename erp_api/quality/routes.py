"""HTTP routes of the quality package: parse, call the service, shape the response."""

from __future__ import annotations

import re

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.http import (
    json_response,
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
    ControlChartOut,
    ControlChartQuery,
    MeasurementBatchIn,
    MeasurementCreated,
    MeasurementIn,
    MeasurementListQuery,
    MeasurementPage,
    MeasurementPost,
    SpecBody,
    SpecListQuery,
    SpecOut,
    SpecPage,
    SpecPath,
    SummaryOut,
    SummaryQuery,
)
from erp_api.resources import resources

TAG = "quality"
# A batch is the object whose only member is "items"; anything else is parsed as one measurement,
# so the errors name the fields of the shape the client meant.
_BATCH_BODY = re.compile(rb'\A\s*\{\s*"items"\s*:')


@describe(
    Operation(
        "Create or replace the spec of a product's parameter",
        TAG,
        body=SpecBody,
        path=SpecPath,
        responses={200: SpecOut, 201: SpecOut},
        errors=(409, 413, 415),
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
    return json_response(await resources(request).quality.spec_page(query))


@describe(
    Operation(
        "Record one measurement of a charge, or a batch of up to 10,000; 201 once durably stored",
        TAG,
        body=MeasurementPost,
        responses={201: MeasurementCreated},
        errors=(404, 409, 413, 415, 503),
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
    return json_response(await resources(request).quality.measurement_page(charge_id, query))


@describe(
    Operation(
        "Statistics and capability (Cp, Cpk, Pp, Ppk) per product and parameter",
        TAG,
        query=SummaryQuery,
        responses={200: SummaryOut},
    )
)
async def summary(request: Request) -> Response:
    query = read_query(request, SummaryQuery)
    return json_response(await resources(request).quality.summary(query))


@describe(
    Operation(
        "Individuals control chart of a charge's parameter: zones, limits and rule violations",
        TAG,
        query=ControlChartQuery,
        responses={200: ControlChartOut},
        errors=(404,),
    )
)
async def chart(request: Request) -> Response:
    query = read_query(request, ControlChartQuery)
    return json_response(await resources(request).quality.control_chart(query))


routes = [
    Route("/quality/specs", list_specs, methods=["GET"]),
    Route("/quality/specs/{product_sku}/{parameter}", put_spec, methods=["PUT"]),
    Route("/quality/summary", summary, methods=["GET"]),
    Route("/quality/control-chart", chart, methods=["GET"]),
    Route("/charges/{id}/measurements", post_measurements, methods=["POST"]),
    Route("/charges/{id}/measurements", list_measurements, methods=["GET"]),
]
