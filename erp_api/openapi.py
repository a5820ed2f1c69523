"""The OpenAPI 3.1 document, generated from the routes and the pydantic models they declare.

Endpoints carry an ``Operation`` (attached with ``describe``); the document walks the app's routes,
so a route that exists is a route that is documented. Given the access policy (``access``), each
operation also documents its bearer-key security, the role it needs, and the 401/403/429 answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from erp_api import __version__

F = TypeVar("F", bound=Callable[..., Any])
Access = Callable[[str, str], str | None]
"""(method, route template) -> the role an operation needs, or None for a public one."""

BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Authorization: Bearer <key>` (created with `python -m erp_api keys create`)",
}
# Every body is parsed (400), bounded (413), typed (415) and validated (422) the same way.
BODY_ERRORS = frozenset({400, 413, 415, 422})
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "Retry-After": {"required": True, "schema": {"type": "integer"}, "description": "Seconds to wait"},
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests per window"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left now"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the full quota is back"},
}

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


def describe(operation: Operation) -> Callable[[F], F]:
    """Attach an Operation to an endpoint; it registers nothing, the route table does that."""

    def attach(endpoint: F) -> F:
        endpoint.__openapi__ = operation  # type: ignore[attr-defined]
        return endpoint

    return attach


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterable[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            yield prefix + route.path, route


def _path_template(path: str) -> tuple[str, list[str]]:
    names = re.findall(r"{([^}:]+)(?::[^}]+)?}", path)
    return re.sub(r"{([^}:]+)(?::[^}]+)?}", r"{\1}", path), names


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    params = []
    for name, info in model.model_fields.items():
        wire_name = info.alias or name
        params.append(
            {
                "name": wire_name,
                "in": "query",
                "required": info.is_required(),
                "schema": schema["properties"][wire_name],
            }
        )
    return params


def build_openapi(
    routes: Iterable[BaseRoute], title: str = "erp-api", access: Access | None = None
) -> dict[str, Any]:
    entries = [(path, route, getattr(route.endpoint, "__openapi__", None)) for path, route in _walk(routes)]
    models: set[type[BaseModel]] = set()
    for _, _, op in entries:
        if op is None:
            continue
        models.update(model for model in (op.body, *op.responses.values()) if model is not None)
    ordered = sorted(models, key=lambda model: model.__name__)
    keyed, defs = models_json_schema(
        [(model, "validation" if _is_input(model, entries) else "serialization") for model in ordered],
        ref_template="#/components/schemas/{model}",
    )
    components: dict[str, Any] = dict(defs.get("$defs", {}))
    components["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for path, route, op in entries:
        if op is None:
            continue
        template, names = _path_template(path)
        path_schemas = op.path.model_json_schema()["properties"] if op.path is not None else {}
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": op.summary,
                "tags": [op.tag],
                "operationId": f"{method.lower()}_{route.name}",
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
                operation["parameters"] += _query_parameters(
                    op.query, op.query.model_json_schema(ref_template="#/components/schemas/{model}")
                )
            if op.body is not None:
                ref = keyed[(op.body, "validation")]
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref}},
                }
            for status, model in op.responses.items():
                response: dict[str, Any] = {"description": _reason(status)}
                if model is not None:
                    schema = keyed.get((model, "validation")) or keyed[(model, "serialization")]
                    response["content"] = {"application/json": {"schema": schema}}
                operation["responses"][str(status)] = response
            errors = set(op.errors) | (BODY_ERRORS if op.body else set()) | ({422} if op.query else set())
            if access is not None:
                errors |= _secure(operation, access(method, path))
            for status in sorted(errors):
                operation["responses"][str(status)] = {
                    "description": _reason(status),
                    "content": {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
                if status == 429:
                    operation["responses"]["429"]["headers"] = RATE_LIMIT_HEADERS
            paths.setdefault(template, {})[method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }
    if access is not None:
        document["components"]["securitySchemes"] = {"bearerAuth": BEARER_SCHEME}
        document["security"] = [{"bearerAuth": []}]
    return document


def _secure(operation: dict[str, Any], role: str | None) -> set[int]:
    """Mark ``operation`` public or name its role; returns the error statuses that follow from that."""
    if role is None:
        operation["security"] = []
        return {429}
    operation["x-required-role"] = role
    operation["description"] = f"Needs an API key with the {role} role or one above it."
    return {401, 403, 429}


def _is_input(model: type[BaseModel], entries: list[tuple[str, Route, Operation | None]]) -> bool:
    return any(op is not None and (op.body is model) for _, _, op in entries)


def _reason(status: int) -> str:
    return HTTPStatus(status).phrase
