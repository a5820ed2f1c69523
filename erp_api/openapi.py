"""The OpenAPI 3.1 document, generated from the routes and the pydantic models they declare.

Endpoints carry an ``Operation`` (attached with ``describe``); the document walks the app's routes,
so a route that exists is a route that is documented. Each operation also documents its bearer-key
security, the role its route declares (``security/access.py``), and the 401/403/429 answers.

Made for client generators: an operation's id is its handler's name (``list_charges``,
``post_measurements``; unique, or the document is not built); every model, and every type marked
with ``schemas.SchemaName``, is one named component that each use refers to; the headers a client
acts on are documented on the responses that carry them (``ETag``, ``Location``, ``Link`` on every
page of a listing, ``RateLimit-*`` on every answer, ``Retry-After`` on a 429).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, Literal, TypeVar, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Route

from erp_api import __version__
from erp_api.routing import walk_routes
from erp_api.security.access import access_of
from erp_api.security.roles import PUBLIC, Requirement

F = TypeVar("F", bound=Callable[..., Any])
REF_TEMPLATE: Final = "#/components/schemas/{model}"

BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Authorization: Bearer <key>` (created with `python -m erp_api keys create`)",
}
# Every body is parsed (400), bounded (413), typed (415) and validated (422) the same way.
BODY_ERRORS = frozenset({400, 413, 415, 422})


def _header(description: str, *, required: bool = False, integer: bool = False) -> dict[str, Any]:
    return {
        "required": required,
        "schema": {"type": "integer" if integer else "string"},
        "description": description,
    }


RATE_LIMIT_STATE: Final[dict[str, Any]] = {
    "RateLimit-Limit": _header("Requests per window (when rate limiting is on)", integer=True),
    "RateLimit-Remaining": _header("Requests left now", integer=True),
    "RateLimit-Reset": _header("Seconds until the full quota is back", integer=True),
}
RATE_LIMIT_HEADERS: Final[dict[str, Any]] = {
    "Retry-After": _header("Seconds to wait before the next request", required=True, integer=True),
    **RATE_LIMIT_STATE,
}
ResponseHeader = Literal["ETag", "Location", "Idempotent-Replayed"]
RESPONSE_HEADERS: Final[dict[ResponseHeader, dict[str, Any]]] = {
    "ETag": _header(
        "The entity tag of this version: send it as If-Match to change it, If-None-Match to revalidate",
        required=True,
    ),
    "Location": _header("The URL of the resource the request created", required=True),
    "Idempotent-Replayed": _header(
        "true when the Idempotency-Key was seen before and this answer is the first request's"
    ),
}
LINK_HEADER: Final = _header(
    'RFC 8288 link to the next page, e.g. `</api/v1/charges?limit=50&cursor=...>; rel="next"` '
    "(every other query parameter kept); absent on the last page"
)

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    # Path parameters are integer ids unless this model describes them.
    path: type[BaseModel] | None = None
    # The headers (of RESPONSE_HEADERS) that a success status carries; Link is found by itself.
    response_headers: Mapping[int, tuple[ResponseHeader, ...]] = field(default_factory=dict)
    # A typical request body, shown in the docs and tried by client generators and fuzzers.
    example: Any = None
    # Success bodies that are not JSON, by status: their media type (e.g. image/svg+xml).
    produces: Mapping[int, str] = field(default_factory=dict)


def describe(operation: Operation) -> Callable[[F], F]:
    """Attach an Operation to an endpoint; it registers nothing, the route table does that."""

    def attach(endpoint: F) -> F:
        endpoint.__openapi__ = operation  # type: ignore[attr-defined]
        return endpoint

    return attach


def _path_template(path: str) -> tuple[str, list[str]]:
    names = re.findall(r"{([^}:]+)(?::[^}]+)?}", path)
    return re.sub(r"{([^}:]+)(?::[^}]+)?}", r"{\1}", path), names


Entry = tuple[str, Route, Operation]


def operation_id(route: Route) -> str:
    """The handler's name: it says what the operation does (``list_charges``), method included."""
    return route.name


def build_openapi(routes: Iterable[BaseRoute], title: str = "erp-api") -> dict[str, Any]:
    entries: list[Entry] = [
        (path, route, route.endpoint.__openapi__)
        for path, route in walk_routes(routes)
        if route.include_in_schema and hasattr(route.endpoint, "__openapi__")
    ]
    repeated = [name for name, count in Counter(operation_id(r) for _, r, _ in entries).items() if count > 1]
    if repeated:
        raise ValueError(f"operation ids must be unique; rename the handlers {', '.join(sorted(repeated))}")
    keyed, components = _components(entries)
    # Query strings and path parameters are parameters, not schemas of their own.
    parameter_models = {model for _, _, op in entries for model in (op.query, op.path) if model is not None}
    parameters = {
        model: components[_ref_name(keyed[(model, "validation")])]["properties"] for model in parameter_models
    }
    for parameter_model in parameter_models:
        del components[_ref_name(keyed[(parameter_model, "validation")])]
    components["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for path, route, op in entries:
        template, names = _path_template(path)
        path_schemas = parameters[op.path] if op.path is not None else {}
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": operation_id(route),
                "parameters": [
                    {
                        "name": name,
                        "in": "path",
                        "required": True,
                        "schema": path_schemas.get(name, {"type": "integer", "minimum": 1}),
                    }
                    for name in names
                ]
                + [
                    {
                        "name": header,
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": text,
                    }
                    for header, text in op.headers.items()
                ],
                "responses": {},
            }
            if op.query is not None:
                operation["parameters"] += _query_parameters(op.query, parameters[op.query])
            if op.body is not None:
                content: dict[str, Any] = {"schema": keyed[(op.body, "validation")]}
                if op.example is not None:
                    content["example"] = op.example
                operation["requestBody"] = {"required": True, "content": {"application/json": content}}
            for status, model in op.responses.items():
                operation["responses"][str(status)] = _success(op, status, model, keyed)
            # A query string or path parameters described by a model are validated (422).
            validated = {422} if op.query is not None or op.path is not None else set()
            errors = set(op.errors) | (BODY_ERRORS if op.body else set()) | validated
            errors |= _secure(operation, access_of(route).role)
            for status in sorted(errors):
                operation["responses"][str(status)] = {
                    "description": _reason(status),
                    "headers": RATE_LIMIT_HEADERS if status == 429 else RATE_LIMIT_STATE,
                    "content": {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
            paths.setdefault(template, {})[method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
    document["components"]["securitySchemes"] = {"bearerAuth": BEARER_SCHEME}
    document["security"] = [{"bearerAuth": []}]
    return document


def _components(
    entries: list[Entry],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
    """Every model the operations name, and every type they mark, as named schemas: bodies, query
    strings and path parameters as validated, responses as serialized (unless also a body)."""
    inputs = {model for _, _, op in entries for model in (op.body, op.query, op.path) if model is not None}
    outputs = {model for _, _, op in entries for model in op.responses.values() if model is not None}
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation" if model in inputs else "serialization")
        for model in sorted(inputs | outputs, key=lambda model: model.__name__)
    ]
    keyed, defs = models_json_schema(modes, ref_template=REF_TEMPLATE)
    return {(cast(type[BaseModel], model), mode): ref for (model, mode), ref in keyed.items()}, dict(
        defs.get("$defs", {})
    )


def _ref_name(schema: Mapping[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[1]


def _query_parameters(model: type[BaseModel], properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    params = []
    for name, info in model.model_fields.items():
        wire_name = info.alias or name
        parameter: dict[str, Any] = {
            "name": wire_name,
            "in": "query",
            "required": info.is_required(),
            "schema": properties[wire_name],
        }
        if info.description:
            parameter["description"] = info.description
        if _is_list(properties[wire_name]):
            # ?status=a&status=b
            parameter["style"], parameter["explode"] = "form", True
        params.append(parameter)
    return params


def _is_list(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_list(option) for option in schema.get("anyOf", ()))


def _success(
    op: Operation,
    status: int,
    model: type[BaseModel] | None,
    keyed: Mapping[tuple[type[BaseModel], JsonSchemaMode], Any],
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _reason(status)}
    headers: dict[str, Any] = {name: RESPONSE_HEADERS[name] for name in op.response_headers.get(status, ())}
    if model is not None:
        schema = keyed.get((model, "validation")) or keyed[(model, "serialization")]
        response["content"] = {"application/json": {"schema": schema}}
        if "next_cursor" in model.model_fields:
            headers["Link"] = LINK_HEADER
    if status in op.produces:
        response["content"] = {op.produces[status]: {"schema": {"type": "string"}}}
    response["headers"] = {**headers, **RATE_LIMIT_STATE}
    return response


def _secure(operation: dict[str, Any], role: Requirement) -> set[int]:
    """Mark ``operation`` public or name its role; returns the error statuses that follow from that."""
    if role == PUBLIC:
        operation["security"] = []
        return {429}
    operation["x-required-role"] = role.value
    operation["description"] = f"Needs an API key with the {role.value} role or one above it."
    return {401, 403, 429}


def _reason(status: int) -> str:
    return HTTPStatus(status).phrase
