"""Structured JSON logs: one parseable line per event, carrying the request id."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

import orjson
import pytest
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_api.observability.log_output import FLUSH_SECONDS
from erp_api.observability.logging import render_json
from erp_api.observability.request_id import bind_request_id, current_request_id, reset_request_id
from tests.observability.conftest import ClientFactory


def forget_output(capsys: pytest.CaptureFixture[str]) -> None:
    """Drop what the app wrote while starting."""
    capsys.readouterr()


async def written_output(capsys: pytest.CaptureFixture[str]) -> str:
    """Stdout once every batched access line has been written (they wait at most FLUSH_SECONDS)."""
    await asyncio.sleep(FLUSH_SECONDS * 3)
    return capsys.readouterr().out


async def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every line written to stdout, each of which must be one JSON object."""
    return [orjson.loads(line) for line in (await written_output(capsys)).splitlines() if line]


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "request"]


async def test_each_request_writes_one_access_line_with_all_fields(
    build_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with build_client() as client:
        forget_output(capsys)
        response = await client.get("/api/v1/charges/42", headers={"X-Request-ID": "req-00000042"})
        lines = access_lines(await log_lines(capsys))
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "info"
    assert line["request_id"] == response.headers["x-request-id"] == "req-00000042"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/charges/{id}"
    assert line["path"] == "/api/v1/charges/42"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


async def test_probes_and_scrapes_are_not_logged(
    build_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with build_client() as client:
        forget_output(capsys)
        for path in ("/health", "/health/ready", "/metrics"):
            await client.get(path)
        assert access_lines(await log_lines(capsys)) == []


async def test_control_characters_in_the_path_stay_escaped_in_one_line(
    build_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with build_client() as client:
        forget_output(capsys)
        await client.get('/x%0A{"level":"critical"}%0D%1B%5B31m%00/"end')
        output = await written_output(capsys)
    lines = [orjson.loads(raw) for raw in output.splitlines() if raw]
    [line] = access_lines(lines)
    assert line["path"] == '/x\n{"level":"critical"}\r\x1b[31m\x00/"end'
    assert line["level"] == "info"
    assert all(raw.startswith("{") for raw in output.splitlines() if raw)


async def test_lines_logged_while_serving_carry_the_request_id(
    build_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async def noisy(_request: Request) -> Response:
        structlog.get_logger("test").info("structlog_inside")
        logging.getLogger("test.stdlib").warning("stdlib %s", "inside")
        return Response("ok")

    async with build_client(routes=[Route("/noisy", noisy)]) as client:
        forget_output(capsys)
        response = await client.get("/noisy")
        lines = await log_lines(capsys)
    request_id = response.headers["x-request-id"]
    by_event = {line["event"]: line for line in lines}
    assert by_event["structlog_inside"]["request_id"] == request_id
    assert by_event["stdlib inside"]["request_id"] == request_id
    assert by_event["stdlib inside"]["level"] == "warning"
    assert by_event["stdlib inside"]["logger"] == "test.stdlib"
    assert by_event["request"]["request_id"] == request_id
    assert current_request_id() is None


async def test_unhandled_error_is_logged_with_trace_and_request_id_but_not_answered_with_it(
    build_client: ClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("secret internals")

    async with build_client(routes=[Route("/broken", broken)]) as client:
        forget_output(capsys)
        response = await client.get("/broken")
        lines = await log_lines(capsys)
    request_id = response.headers["x-request-id"]
    [error] = [line for line in lines if line["event"] == "unhandled_error"]
    assert error["request_id"] == request_id
    assert error["level"] == "error"
    assert "RuntimeError: secret internals" in error["exception"]
    [access] = access_lines(lines)
    assert (access["status"], access["request_id"]) == (500, request_id)
    assert "secret internals" not in response.text


def test_renderer_survives_values_orjson_refuses() -> None:
    line = render_json(None, "info", {"event": "odd", "path": "/\udcff", 3: "int key", "obj": object()})
    assert b"\n" not in line
    parsed = json.loads(line)
    assert parsed["path"] == "/\udcff"
    assert parsed["3"] == "int key"
    assert parsed["obj"].startswith("<object object")


def test_current_request_id_follows_binding() -> None:
    assert current_request_id() is None
    token = bind_request_id("bound-12345678")
    try:
        assert current_request_id() == "bound-12345678"
    finally:
        reset_request_id(token)
    assert current_request_id() is None
