from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from erp_api.app import create_app
from erp_api.openapi import Operation, build_openapi, describe
from erp_api.routing import walk_routes
from erp_api.security.access import Endpoint
from erp_api.security.roles import Role
from erp_api.settings import load_settings


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
    for ref in set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text)):
        assert ref in schemas, f"dangling $ref {ref}"
    create = document["paths"]["/api/v1/charges"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChargeCreate")
    assert "201" in create["responses"] and "409" in create["responses"]


# Made for client generators -----------------------------------------------------------------------

ROUTES = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:")).routes
DOCUMENT = build_openapi(ROUTES)
OPERATIONS = [
    (path, method, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def test_operation_ids_are_the_handler_names_unique_and_without_the_method() -> None:
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(ids) == len(set(ids))
    handlers = {route.name for _, route in walk_routes(ROUTES)}
    assert set(ids) <= handlers
    assert {
        "list_charges",
        "get_charge",
        "create_charge",
        "post_measurements",
        "get_spec",
        "list_products",
    } <= set(ids)
    for _, method, operation in OPERATIONS:
        assert not operation["operationId"].startswith(f"{method}_{method}"), operation["operationId"]


def test_two_handlers_of_one_name_are_refused() -> None:
    async def list_things(request: Request) -> Response:
        return Response()

    first = describe(Operation("one", "t"))(list_things)
    routes = [Endpoint("/a", first, "GET", Role.VIEWER), Endpoint("/b", first, "GET", Role.VIEWER)]
    with pytest.raises(ValueError, match="list_things"):
        build_openapi(routes)


def test_an_enum_used_in_several_places_is_one_named_schema() -> None:
    components = DOCUMENT["components"]["schemas"]
    inline = Counter(
        tuple(node["enum"])
        for path, node in _walk(DOCUMENT)
        if "enum" in node and not re.fullmatch(r"/components/schemas/[^/]+", path)
    )
    assert [values for values, count in inline.items() if count > 1] == []
    assert components["RuleSet"]["enum"] == ["nelson", "western_electric"]
    rule_set_refs = [
        path for path, node in _walk(DOCUMENT) if node.get("$ref") == "#/components/schemas/RuleSet"
    ]
    for user in ("SpecBody", "SpecOut", "AnalysisCreate", "AnalysisOut", "ControlChartOut", "control-chart"):
        assert any(user in path for path in rule_set_refs), user
    for name in ("ChargeStatus", "AlertStatus", "AnalysisStatus", "ChargeSort", "RuleName", "DeliveryStatus"):
        assert "enum" in components[name], name


def test_the_analysis_result_is_typed() -> None:
    components = DOCUMENT["components"]["schemas"]
    result = components["AnalysisOut"]["properties"]["result"]
    assert {"$ref": "#/components/schemas/AnalysisResult"} in result["anyOf"]
    parameters = components["AnalysisResult"]["properties"]["parameters"]
    assert parameters["items"] == {"$ref": "#/components/schemas/ParameterAnalysis"}
    violation = components["AnalysisViolation"]["properties"]
    assert violation["rule"] == {"$ref": "#/components/schemas/RuleName"}
    assert violation["measured_at"]["format"] == "date-time"


def test_the_headers_a_client_acts_on_are_documented() -> None:
    paths = DOCUMENT["paths"]
    create = paths["/api/v1/charges"]["post"]["responses"]["201"]["headers"]
    assert create["Location"]["required"] and create["ETag"]["required"]
    assert paths["/api/v1/charges/{id}"]["get"]["responses"]["200"]["headers"]["ETag"]["required"]
    assert "ETag" in paths["/api/v1/charges/{id}"]["patch"]["responses"]["200"]["headers"]
    assert "Location" in paths["/api/v1/charges/{id}/analyses"]["post"]["responses"]["202"]["headers"]
    assert "Link" in paths["/api/v1/charges"]["get"]["responses"]["200"]["headers"]
    for _, _, operation in OPERATIONS:
        for status, response in operation["responses"].items():
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(response["headers"])
            if status == "429":
                assert response["headers"]["Retry-After"]["required"] is True


def test_quantity_limits_are_in_the_schema() -> None:
    quantity = DOCUMENT["components"]["schemas"]["ChargeCreate"]["properties"]["quantity"]
    number, text = quantity["anyOf"]
    assert number["exclusiveMinimum"] == 0 and number["exclusiveMaximum"] == 10**15
    assert re.fullmatch(text["pattern"], "999999999999999.999")
    assert not re.fullmatch(text["pattern"], "1000000000000000") and not re.fullmatch(
        text["pattern"], "1.0001"
    )


def test_the_main_request_bodies_have_examples_their_models_accept() -> None:
    examples = {}
    for _, route in walk_routes(ROUTES):
        operation = getattr(route.endpoint, "__openapi__", None)
        if operation is not None and operation.example is not None:
            assert operation.body is not None
            operation.body.model_validate_json(orjson.dumps(operation.example))
            examples[route.name] = operation.example
    expected = {
        "create_charge",
        "update_charge",
        "transition_charge",
        "put_spec",
        "post_measurements",
        "submit_analysis",
    }
    assert expected <= set(examples)
    body = DOCUMENT["paths"]["/api/v1/charges"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == examples["create_charge"]


def test_repeated_query_parameters_are_documented_as_such() -> None:
    parameters = {p["name"]: p for p in DOCUMENT["paths"]["/api/v1/charges"]["get"]["parameters"]}
    assert parameters["status"]["explode"] is True
    assert parameters["sort"]["schema"]["$ref"] == "#/components/schemas/ChargeSort"
