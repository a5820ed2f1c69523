"""Health probes: ``/health`` (the process answers) and ``/health/ready`` (its dependencies do).

Readiness runs every check of ``readiness_checks()`` concurrently, each under a timeout, and
reports each one's status and latency. A failing required check makes the answer a 503
problem+json, so a load balancer stops sending traffic; optional checks only mark it degraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

from kombu.connection import Connection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from erp_api.errors import problem_response
from erp_api.http import json_response
from erp_api.resources import Resources, resources

NO_STORE = {"Cache-Control": "no-store"}
NETWORK_BROKER_SCHEMES = ("redis://", "rediss://")

Probe = Callable[[], Awaitable[object]]
"""Raises, or returns False, when the dependency is not usable."""


@dataclass(frozen=True)
class ReadinessCheck:
    """One dependency to probe; ``required`` ones decide between 200 and 503."""

    name: str
    probe: Probe
    required: bool = True


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"status": "ok" if self.ok else "fail", "latency_ms": self.latency_ms}
        if not self.required:
            result["required"] = False
        if self.error is not None:
            result["error"] = self.error
        return result


async def database_probe(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def broker_probe(url: str, connect_seconds: float) -> None:
    """Open (and close) one connection to the message broker, in a thread: kombu blocks."""

    def connect() -> None:
        with Connection(url, connect_timeout=connect_seconds) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=connect_seconds)

    await asyncio.to_thread(connect)


def readiness_checks(ctx: Resources) -> list[ReadinessCheck]:
    """The dependencies the service needs to serve requests; extend this list for new ones."""
    settings = ctx.settings
    checks = [ReadinessCheck("database", partial(database_probe, ctx.engine))]
    if settings.cache_backend == "redis":
        checks.append(ReadinessCheck("redis", ctx.cache.ping))
    # A SQL-transport broker is a local table, not a service that can be down on its own.
    if settings.broker_url.startswith(NETWORK_BROKER_SCHEMES):
        checks.append(
            ReadinessCheck(
                "broker", partial(broker_probe, settings.broker_url, settings.health_timeout_seconds)
            ),
        )
    return checks


async def run_check(check: ReadinessCheck, limit_seconds: float) -> CheckResult:
    """Probe once, within ``limit_seconds``; the error names the exception class, not its text."""
    started = perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(limit_seconds):
            answer = await check.probe()
        if answer is False:
            error = "unavailable"
    except TimeoutError:
        error = f"no answer within {limit_seconds:g} s"
    except Exception as exc:
        error = type(exc).__name__
    latency_ms = round((perf_counter() - started) * 1000.0, 3)
    return CheckResult(check.name, error is None, check.required, latency_ms, error)


async def liveness(_request: Request) -> Response:
    """The process is up and its event loop answers; no dependency is consulted."""
    return json_response({"status": "ok"}, headers=NO_STORE)


async def readiness(request: Request) -> Response:
    ctx = resources(request)
    timeout = ctx.settings.health_timeout_seconds
    results = await asyncio.gather(*(run_check(check, timeout) for check in readiness_checks(ctx)))
    checks = {result.name: result.as_dict() for result in results}
    failed = [result.name for result in results if not result.ok and result.required]
    if failed:
        return problem_response(
            503,
            "Service not ready",
            f"required dependencies failed: {', '.join(failed)}",
            slug="not-ready",
            instance=request.url.path,
            extra={"checks": checks},
            headers=NO_STORE,
        )
    status = "ok" if all(result.ok for result in results) else "degraded"
    return json_response({"status": status, "checks": checks}, headers=NO_STORE)
