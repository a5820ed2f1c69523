"""Request parsing and response helpers shared by every route module.

Bodies and query strings are validated by pydantic models; every failure becomes a problem+json
error naming the field, so a route never builds an error by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import UnionType
from typing import Any, Final, TypeVar, Union, get_args, get_origin
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from erp_api.errors import (
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from erp_api.pagination import next_cursor_of

M = TypeVar("M", bound=BaseModel)

API_PREFIX: Final = "/api/v1"
"""Where the API's routes are mounted; every path of the API, and every link to one, starts with it."""
JSON_MEDIA_TYPE = "application/json"
_JSON_CONTENT_TYPE: Final = JSON_MEDIA_TYPE.encode("latin-1")


def json_response(payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Serialize once with orjson; bytes are taken as already-serialized JSON."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Response(body, status_code=status_code, headers=dict(headers or {}), media_type=JSON_MEDIA_TYPE)


class JsonDocumentResponse(Response):
    """200 with already-serialized JSON and its ``ETag``, for cached reads: the raw headers are built
    at once, where ``Response.__init__`` would work out the same from a mapping of str."""

    media_type = JSON_MEDIA_TYPE

    def __init__(self, body: bytes, etag: str) -> None:
        # Not Response.__init__: it would render the body and encode the same headers from str.
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"etag", etag.encode("latin-1")),
            (b"content-length", b"%d" % len(body)),
            (b"content-type", _JSON_CONTENT_TYPE),
        ]


def paged_response(
    request: Request, page: bytes | dict[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """A page of a keyset listing (``{"items": [...], ..., "next_cursor": ...}``) with, unless it is
    the last, an RFC 8288 ``Link: <...>; rel="next"``: the request's path and query, every other
    parameter kept in order, ``cursor`` set to the page's ``next_cursor``."""
    cursor = next_cursor_of(page)
    links = {} if cursor is None else {"Link": f'<{next_page_url(request, cursor)}>; rel="next"'}
    return json_response(page, headers={**(headers or {}), **links})


def next_page_url(request: Request, cursor: str) -> str:
    """The relative URL of the page after ``request``'s: the same query with ``cursor`` replaced."""
    params = [(key, value) for key, value in request.query_params.multi_items() if key != "cursor"]
    return f"{request.url.path}?{urlencode([*params, ('cursor', cursor)])}"


# pydantic words what a validator raises as "Value error, <message>"; the client gets the message.
_LIBRARY_PREFIXES: Final = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    prefix = _LIBRARY_PREFIXES.get(error["type"])
    return message.removeprefix(prefix) if prefix else message


def _error_list(exc: ValidationError, root: str) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in error["loc"])
        errors.append(
            {"field": f"{root}.{path}" if path else root, "message": _message(error), "type": error["type"]}
        )
    return errors


def validation_failed(exc: ValidationError, root: str) -> ValidationFailed:
    errors = _error_list(exc, root)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"{first['field']}: {first['message']}{more}", errors)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refusing anything larger than ``max_bytes`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise MalformedRequest("Content-Length must be a non-negative integer")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(f"the body is {declared} bytes; at most {max_bytes} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_json_content_type(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"send the body as {JSON_MEDIA_TYPE} (got {media_type or 'no content type'})"
        )


async def read_json(request: Request, model: type[M], max_bytes: int) -> M:
    """Parse and validate a JSON body into ``model``: 415, 413, 400 or 422 on bad input."""
    return parse_json(await read_json_body(request, max_bytes), model)


async def read_json_body(request: Request, max_bytes: int) -> bytes:
    """The raw body of a JSON request (415, 413 on bad input), for routes that pick the model by shape."""
    _check_json_content_type(request)
    return await read_body(request, max_bytes)


def parse_json(body: bytes, model: type[M]) -> M:
    if not body:
        raise MalformedRequest("the request body is empty; a JSON document is required")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise MalformedRequest(
                f"the body is not valid JSON: {first['ctx'].get('error', first['msg'])}"
            ) from None
        raise validation_failed(exc, "body") from None


def read_query(request: Request, model: type[M]) -> M:
    """Validate the query string into ``model``; unknown parameters are refused, and so are repeated
    ones unless the model's field is a list (``?status=a&status=b``)."""
    repeatable = _list_fields(model)
    params: dict[str, str | list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in repeatable:
            values = params.setdefault(key, [])
            if isinstance(values, list):
                values.append(value)
            continue
        if key in params:
            raise ValidationFailed(
                f"query.{key}: given more than once",
                [{"field": f"query.{key}", "message": "given more than once", "type": "duplicate"}],
            )
        params[key] = value
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_failed(exc, "query") from None


@cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    """The query names of ``model``'s list fields (``list[X]`` or ``list[X] | None``)."""

    def is_list(annotation: Any) -> bool:
        if get_origin(annotation) is list:
            return True
        return get_origin(annotation) in (Union, UnionType) and any(
            is_list(arg) for arg in get_args(annotation)
        )

    return frozenset(
        info.alias or name for name, info in model.model_fields.items() if is_list(info.annotation)
    )


def request_header(request: Request, name: str) -> str | None:
    """The first value of the request header ``name`` (lower case), or None.

    For the hot path: ``request.headers.get`` builds a ``Headers`` and, for an absent header, raises
    and catches a KeyError, several times the cost of this scan of the raw (lower-case) names.
    """
    raw_name = name.encode("latin-1")
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == raw_name:
            return value.decode("latin-1")
    return None


def path_int(request: Request, name: str) -> int:
    """An integer path parameter in the 64-bit id range, else 404 (no such resource can exist)."""
    raw = request.path_params[name]
    value = raw if isinstance(raw, int) else int(raw) if str(raw).isdigit() else -1
    if not 0 < value < 2**63:
        raise NotFound(f"no resource has the id {raw!s:.40}")
    return value
