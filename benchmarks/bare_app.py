"""A truly bare Starlette app in a process of its own: the ceiling for the cached charge read.

It answers the product's charge route (``/api/v1/charges/{id}``) with one response captured once
from the product (the same body, ETag and content type) and has nothing else on the way: no
middleware, no cache, no database, no authentication. ``/health`` exists only so that
``testing.processes.running_server`` sees it serve.

``python -m benchmarks.bare_app`` starts it with the uvicorn arguments of ``python -m erp_api
serve`` (host, port and worker count from ERP_HOST / ERP_PORT / ERP_WORKERS, and the rest from
``erp_api.__main__.SERVER_OPTIONS``: uvloop, httptools, no uvicorn access log, no Server header),
so that the two processes differ only in the application. ``bare_server()`` does that for a
benchmark.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from erp_api.http import API_PREFIX
from testing.processes import Server, running_server

RESPONSE_ENV = "ERP_BENCH_BARE_RESPONSE"
"""Names the JSON file with the response to serve: {"body": str, "headers": {name: value}}."""
CHARGE_ROUTE = f"{API_PREFIX}/charges/{{charge_id:int}}"


def create_bare_app() -> Starlette:
    """The one-route app serving the response named by ``ERP_BENCH_BARE_RESPONSE``."""
    captured = orjson.loads(Path(os.environ[RESPONSE_ENV]).read_bytes())
    body: bytes = captured["body"].encode()
    headers: dict[str, str] = captured["headers"]
    media_type = headers.pop("content-type", "application/json")

    async def charge(request: Request) -> Response:
        return Response(body, headers=headers, media_type=media_type)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route(CHARGE_ROUTE, charge, methods=["GET"]), Route("/health", health)])


@contextmanager
def bare_server(body: bytes, headers: Mapping[str, str], workers: int = 1) -> Iterator[Server]:
    """The bare app serving ``body`` with ``headers`` (ETag, content type) on a free port."""
    with tempfile.TemporaryDirectory() as tmp:
        response = Path(tmp) / "response.json"
        response.write_bytes(orjson.dumps({"body": body.decode(), "headers": dict(headers)}))
        env = {RESPONSE_ENV: str(response), "ERP_WORKERS": str(workers)}
        with running_server(env, command=[sys.executable, "-m", "benchmarks.bare_app"]) as server:
            yield server


def main() -> None:
    import uvicorn

    from erp_api.__main__ import SERVER_OPTIONS

    # Exactly the arguments `python -m erp_api serve` passes, app aside. The variables are read
    # directly: the product's Settings would validate a configuration this lacks.
    uvicorn.run(
        "benchmarks.bare_app:create_bare_app",
        factory=True,
        host=os.environ["ERP_HOST"],
        port=int(os.environ["ERP_PORT"]),
        workers=int(os.environ.get("ERP_WORKERS", "1")),
        **SERVER_OPTIONS,
    )


if __name__ == "__main__":
    main()
