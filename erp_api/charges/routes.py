"""HTTP routes of the charges package: parse, call the service, shape the response."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.charges.documents import charge_dict, charge_etag, etag_matches, unpack_document
from erp_api.charges.schemas import (
    ChargeBatchCreate,
    ChargeBatchOut,
    ChargeCreate,
    ChargeListQuery,
    ChargeLookup,
    ChargeLookupOut,
    ChargeOut,
    ChargePage,
    ChargeUpdate,
    TransitionRequest,
)
from erp_api.http import json_response, path_int, read_json, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources

TAG = "charges"


@describe(Operation("List charges, newest first", TAG, query=ChargeListQuery, responses={200: ChargePage}))
async def list_charges(request: Request) -> Response:
    query = read_query(request, ChargeListQuery)
    return json_response(await resources(request).charges.page(query))


@describe(
    Operation("Create a charge", TAG, body=ChargeCreate, responses={201: ChargeOut}, errors=(409, 413, 415))
)
async def create_charge(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, ChargeCreate, ctx.settings.max_body_bytes)
    charge = await ctx.charges.create(data)
    return json_response(
        charge_dict(charge),
        201,
        {"Location": f"/api/v1/charges/{charge.id}", "ETag": charge_etag(charge.id, charge.version)},
    )


@describe(
    Operation(
        "Create up to 1,000 charges, all or nothing",
        TAG,
        body=ChargeBatchCreate,
        responses={201: ChargeBatchOut},
        errors=(409, 413, 415),
    )
)
async def create_charges_batch(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, ChargeBatchCreate, ctx.settings.max_batch_body_bytes)
    charges = await ctx.charges.create_many(data.items)
    return json_response({"items": [charge_dict(charge) for charge in charges]}, 201)


@describe(
    Operation(
        "Find charges by number (up to 10,000)",
        TAG,
        body=ChargeLookup,
        responses={200: ChargeLookupOut},
        errors=(413, 415),
    )
)
async def lookup_charges(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, ChargeLookup, ctx.settings.max_batch_body_bytes)
    return json_response(await ctx.charges.lookup(data.numbers))


@describe(
    Operation(
        "Fetch a charge",
        TAG,
        responses={200: ChargeOut, 304: None},
        errors=(404,),
        headers={"If-None-Match": "ETag of a copy the client holds"},
    )
)
async def get_charge(request: Request) -> Response:
    charge_id = path_int(request, "id")
    service = resources(request).charges
    if_none_match = request.headers.get("if-none-match")
    etag, body = unpack_document(await service.document(charge_id))
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return json_response(body, headers={"ETag": etag})


@describe(
    Operation(
        "Change a charge's quantity, unit, line or production time",
        TAG,
        body=ChargeUpdate,
        responses={200: ChargeOut},
        errors=(404, 409, 412, 413, 415),
        headers={"If-Match": "ETag the change is based on"},
    )
)
async def update_charge(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    changes = await read_json(request, ChargeUpdate, ctx.settings.max_body_bytes)
    charge = await ctx.charges.update(charge_id, changes, request.headers.get("if-match"))
    return json_response(charge_dict(charge), headers={"ETag": charge_etag(charge.id, charge.version)})


@describe(Operation("Delete a planned charge", TAG, responses={204: None}, errors=(404, 409)))
async def delete_charge(request: Request) -> Response:
    await resources(request).charges.delete(path_int(request, "id"))
    return Response(status_code=204)


@describe(
    Operation(
        "Move a charge to another status",
        TAG,
        body=TransitionRequest,
        responses={200: ChargeOut},
        errors=(404, 409, 413, 415),
    )
)
async def transition_charge(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    data = await read_json(request, TransitionRequest, ctx.settings.max_body_bytes)
    charge = await ctx.charges.transition(charge_id, data.to, data.reason)
    return json_response(charge_dict(charge), headers={"ETag": charge_etag(charge.id, charge.version)})


routes = [
    Route("/charges", list_charges, methods=["GET"]),
    Route("/charges", create_charge, methods=["POST"]),
    Route("/charges/batch", create_charges_batch, methods=["POST"]),
    Route("/charges/lookup", lookup_charges, methods=["POST"]),
    Route("/charges/{id}", get_charge, methods=["GET"]),
    Route("/charges/{id}", update_charge, methods=["PATCH"]),
    Route("/charges/{id}", delete_charge, methods=["DELETE"]),
    Route("/charges/{id}/transitions", transition_charge, methods=["POST"]),
]
