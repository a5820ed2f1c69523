"""``/api/v1/webhooks``: subscribe to events, list and disable subscriptions, read the delivery log
(admins only, as the routes below declare)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from erp_api.http import API_PREFIX, json_response, paged_response, path_int, read_json, read_query
from erp_api.openapi import Operation, describe
from erp_api.resources import resources
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role
from erp_api.webhooks.documents import subscription_dict
from erp_api.webhooks.schemas import (
    DeliveryListQuery,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookListQuery,
    WebhookOut,
)

TAG = "webhooks"
NO_STORE = {"Cache-Control": "no-store"}


@describe(
    Operation(
        "Subscribe a URL to events; the response is the only time the signing secret is shown",
        TAG,
        body=WebhookCreate,
        responses={201: WebhookCreated},
        errors=(413, 415),
        response_headers={201: ("Location",)},
    )
)
async def create_webhook(request: Request) -> Response:
    ctx = resources(request)
    data = await read_json(request, WebhookCreate, ctx.settings.max_body_bytes)
    subscription, secret = await ctx.webhooks.create(data)
    return json_response(
        {**subscription_dict(subscription), "secret": secret},
        201,
        {**NO_STORE, "Location": f"{API_PREFIX}/webhooks/{subscription.id}"},
    )


@describe(
    Operation(
        "List webhooks (never their secrets)", TAG, query=WebhookListQuery, responses={200: WebhookList}
    )
)
async def list_webhooks(request: Request) -> Response:
    query = read_query(request, WebhookListQuery)
    subscriptions = await resources(request).webhooks.subscriptions(include_disabled=query.include_disabled)
    return json_response({"items": [subscription_dict(row) for row in subscriptions]}, headers=NO_STORE)


@describe(Operation("Fetch a webhook (never its secret)", TAG, responses={200: WebhookOut}, errors=(404,)))
async def get_webhook(request: Request) -> Response:
    subscription = await resources(request).webhooks.subscription(path_int(request, "id"))
    return json_response(subscription_dict(subscription), headers=NO_STORE)


@describe(
    Operation(
        "Disable a webhook: no new deliveries, pending ones are not sent",
        TAG,
        responses={204: None},
        errors=(404,),
    )
)
async def disable_webhook(request: Request) -> Response:
    await resources(request).webhooks.disable(path_int(request, "id"))
    return Response(status_code=204)


@describe(
    Operation(
        "A webhook's delivery log, newest first, with every attempt",
        TAG,
        query=DeliveryListQuery,
        responses={200: DeliveryPage},
        errors=(404,),
    )
)
async def list_deliveries(request: Request) -> Response:
    webhook_id = path_int(request, "id")
    query = read_query(request, DeliveryListQuery)
    page = await resources(request).webhooks.deliveries(webhook_id, query)
    return paged_response(request, page, NO_STORE)


routes = [
    Endpoint("/webhooks", list_webhooks, "GET", Role.ADMIN),
    Endpoint("/webhooks", create_webhook, "POST", Role.ADMIN),
    Endpoint("/webhooks/{id}", get_webhook, "GET", Role.ADMIN),
    Endpoint("/webhooks/{id}", disable_webhook, "DELETE", Role.ADMIN),
    Endpoint("/webhooks/{id}/deliveries", list_deliveries, "GET", Role.ADMIN),
]
