"""The service plus a bare Starlette route in the same process: the ceiling for the cached read path.

``GET /bench/bare-charge`` returns the bytes of charge 1 (fetched once through the service at the
first call) with no cache lookup, validation or database work: what a route costs and no more.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.app import create_app
from erp_api.charges.documents import unpack_document
from erp_api.resources import resources


def create_bench_app() -> Starlette:
    app = create_app()
    body: list[bytes] = []

    async def bare_charge(request: Request) -> Response:
        if not body:
            body.append(unpack_document(await resources(request).charges.document(1))[1])
        return Response(body[0], media_type="application/json")

    app.router.routes.insert(0, Route("/bench/bare-charge", bare_charge, methods=["GET"]))
    return app
