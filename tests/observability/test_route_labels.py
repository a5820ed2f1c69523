"""Route templates read from the scope, also behind a server root path and inside mounts."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from erp_api.observability.route_labels import UNMATCHED, route_template


async def ok(_request: Request) -> Response:
    return PlainTextResponse("ok")


def recording_app(seen: list[str]) -> Starlette:
    """Nested mounts; a wrapper records the template after the router ran, as the middleware does."""
    inner = Starlette(
        routes=[
            Mount("/v2", routes=[Route("/items/{item_id:int}", ok)]),
            Route("/ping", ok),
        ]
    )

    class Recorder:
        def __init__(self, app: Starlette) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            root_path = scope.get("root_path", "")
            status = 0

            async def capture(message: dict[str, object]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(str(message["status"]))
                await send(message)

            await self.app(scope, receive, capture)
            seen.append(route_template(scope, root_path, status))

    return Starlette(routes=[Mount("/api", app=Recorder(inner))])


async def test_template_joins_the_paths_of_nested_mounts_and_the_route() -> None:
    seen: list[str] = []
    transport = httpx.ASGITransport(app=recording_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/api/v2/items/7")
        await client.get("/api/ping")
        await client.get("/api/v2/missing")
        await client.get("/api/v2/items/not-an-int")
    # The recorder sits inside /api, so /api is the server-side root path it starts from.
    assert seen == ["/v2/items/{item_id:int}", "/ping", UNMATCHED, UNMATCHED]


async def test_server_root_path_is_not_part_of_the_template() -> None:
    seen: list[str] = []
    app = recording_app(seen).routes[0].app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, root_path="/prefix")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/prefix/v2/items/3")
    assert response.status_code == 200
    assert seen == ["/v2/items/{item_id:int}"]
