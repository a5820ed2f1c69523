"""HTTP routes of the charges package: parse, call the service, shape the response."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.charges.documents import charge_dict, charge_etag, if_none_match_hits, unpack_document
from erp_api.charges.schemas import (
    ChargeBatchCreate,
    ChargeBatchOut,
    ChargeCreate,
    ChargeHistory,
    ChargeListQuery,
    ChargeLookup,
    ChargeLookupOut,
    ChargeOut,
    ChargePage,
    ChargeUpdate,
    TransitionRequest,
)
from erp_api.http import (
    API_PREFIX,
    JsonDocumentResponse,
    json_response,
    paged_response,
    path_int,
    read_json,
    read_query,
    request_header,
)
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.body_limit import BodyLimit
from erp_api.security.roles import Role

TAG = "charges"
CHARGE_EXAMPLE = {
    "charge_number": "CH-2026-000123",
    "product_sku": "PUMP-A",
    "quantity": "1250.5",
    "unit": "pcs",
    "line": "Linie Süd",
    "produced_at": "2026-03-01T06:00:00+01:00",
}


@describe(
    Operation(
        "List charges (newest first, or sorted by sort), filtered, in keyset pages",
        TAG,
        query=ChargeListQuery,
        responses={200: ChargePage},
    )
)
async def list_charges(request: Request) -> Response:
    query = read_query(request, ChargeListQuery)
    return paged_response(request, await resources(request).charges.page(query))


@describe(
    Operation(
        "Create a charge",
        TAG,
        body=ChargeCreate,
        responses={201: ChargeOut},
        errors=(409, 413, 415),
        response_headers={201: ("Location", "ETag")},
        example=CHARGE_EXAMPLE,
    )
)
async def create_charge(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, ChargeCreate, ctx.settings.max_body_bytes)
    charge = await ctx.charges.create(data)
    return json_response(
        charge_dict(charge),
        201,
        {"Location": f"{API_PREFIX}/charges/{charge.id}", "ETag": charge_etag(charge.id, charge.version)},
    )


@describe(
    Operation(
        "Create up to 1,000 charges, all or nothing",
        TAG,
        body=ChargeBatchCreate,
        responses={201: ChargeBatchOut},
        errors=(409, 413, 415),
        example={"items": [CHARGE_EXAMPLE]},
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
        response_headers={200: ("ETag",), 304: ("ETag",)},
    )
)
async def get_charge(request: Request) -> Response:
    return _charge_response(request, await resources(request).charges.document(path_int(request, "id")))


async def cached_charge(request: Request) -> Response | None:
    """``get_charge``'s answer when the cache holds the charge, else None (``cached_reads``)."""
    document = await resources(request).charges.cached_document(path_int(request, "id"))
    return None if document is None else _charge_response(request, document)


def _charge_response(request: Request, document: bytes) -> Response:
    etag, body = unpack_document(document)
    if if_none_match_hits(request_header(request, "if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JsonDocumentResponse(body, etag)


@describe(
    Operation(
        "Change a charge's quantity, unit, line or production time (not once released or rejected)",
        TAG,
        body=ChargeUpdate,
        responses={200: ChargeOut},
        errors=(404, 409, 412, 413, 415),
        headers={"If-Match": "ETag the change is based on (strong comparison: a weak W/ tag never matches)"},
        response_headers={200: ("ETag",)},
        example={"quantity": "1200", "line": "Linie Nord"},
    )
)
async def update_charge(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    changes = await read_json(request, ChargeUpdate, ctx.settings.max_body_bytes)
    charge = await ctx.charges.update(charge_id, changes, request.headers.get("if-match"))
    return json_response(charge_dict(charge), headers={"ETag": charge_etag(charge.id, charge.version)})


@describe(
    Operation("Delete a planned charge without measurements", TAG, responses={204: None}, errors=(404, 409))
)
async def delete_charge(request: Request) -> Response:
    await resources(request).charges.delete(path_int(request, "id"))
    return Response(status_code=204)


@describe(
    Operation(
        "Move a charge to another status (released only without open quality alerts)",
        TAG,
        body=TransitionRequest,
        responses={200: ChargeOut},
        errors=(404, 409, 412, 413, 415),
        headers={
            "If-Match": "ETag the decision is based on (strong comparison: a weak W/ tag never matches)"
        },
        response_headers={200: ("ETag",)},
        example={"to": "in_production", "reason": "started on line 2"},
    )
)
async def transition_charge(request: Request) -> Response:
    ctx = resources(request)
    charge_id = path_int(request, "id")
    data = await read_json(request, TransitionRequest, ctx.settings.max_body_bytes)
    charge = await ctx.charges.transition(charge_id, data.to, data.reason, request.headers.get("if-match"))
    return json_response(charge_dict(charge), headers={"ETag": charge_etag(charge.id, charge.version)})


@describe(
    Operation(
        "A charge's status changes, oldest first (at most 1,000): from, to, reason, when, by whom",
        TAG,
        responses={200: ChargeHistory},
        errors=(404,),
    )
)
async def charge_history(request: Request) -> Response:
    return json_response(await resources(request).charges.history(path_int(request, "id")))


routes = [
    Endpoint("/charges", list_charges, "GET", Role.VIEWER),
    Endpoint("/charges", create_charge, "POST", Role.OPERATOR),
    Endpoint("/charges/batch", create_charges_batch, "POST", Role.OPERATOR, body=BodyLimit.BATCH),
    # A read with a large body.
    Endpoint("/charges/lookup", lookup_charges, "POST", Role.VIEWER, body=BodyLimit.BATCH),
    Endpoint("/charges/{id}", get_charge, "GET", Role.VIEWER, cached=cached_charge),
    # Quantity, unit, line, time: shop-floor corrections.
    Endpoint("/charges/{id}", update_charge, "PATCH", Role.OPERATOR),
    # Only planned charges without measurements can be deleted at all.
    Endpoint("/charges/{id}", delete_charge, "DELETE", Role.OPERATOR),
    # Release, reject, quarantine: decisions on quality.
    Endpoint("/charges/{id}/transitions", transition_charge, "POST", Role.QUALITY_MANAGER),
    Endpoint("/charges/{id}/history", charge_history, "GET", Role.VIEWER),
]
