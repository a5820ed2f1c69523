from __future__ import annotations

import httpx
from starlette.routing import Mount, Route

from erp_api.app import create_app


async def test_openapi_document_describes_every_api_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    app = create_app()
    expected = set()
    for mount in app.routes:
        if isinstance(mount, Mount):
            for route in mount.routes:
                assert isinstance(route, Route)
                for method in route.methods or ():
                    if method != "HEAD":
                        expected.add((mount.path + route.path, method.lower()))
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert expected <= documented


async def test_openapi_schemas_resolve(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    text = str(document)
    import re

    for ref in set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text)):
        assert ref in schemas, f"dangling $ref {ref}"
    create = document["paths"]["/api/v1/charges"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChargeCreate")
    assert "201" in create["responses"] and "409" in create["responses"]
