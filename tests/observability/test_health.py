"""Liveness and readiness probes, with real dependencies up and down."""

from __future__ import annotations

import asyncio
import time

import pytest

from erp_api.observability.health import ReadinessCheck, run_check
from testing.processes import free_port
from tests.cache.conftest import delete_prefix
from tests.observability.conftest import ClientFactory
from tests.services import require_redis, unique_name


async def test_liveness_answers_without_consulting_dependencies(build_client: ClientFactory) -> None:
    dead_database = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    async with build_client(database_url=dead_database) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_ready_reports_each_dependency_with_its_latency(build_client: ClientFactory) -> None:
    async with build_client() as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database"}
    assert body["checks"]["database"]["status"] == "ok"
    assert 0 <= body["checks"]["database"]["latency_ms"] < 1000


async def test_ready_is_503_when_the_database_is_unreachable(build_client: ClientFactory) -> None:
    dead_database = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    async with build_client(database_url=dead_database, health_timeout_seconds=2.0) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert "database" in body["detail"]
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["database"]["error"]
    assert "127.0.0.1" not in response.text


async def test_ready_is_503_naming_redis_when_the_redis_cache_is_unreachable(
    build_client: ClientFactory,
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with build_client(cache_backend="redis", redis_url=dead_redis) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["status"] == "fail"
    assert checks["database"]["status"] == "ok"


@pytest.mark.redis
async def test_ready_includes_a_reachable_redis_cache(build_client: ClientFactory) -> None:
    redis_url = require_redis()
    prefix = unique_name("obs_ready")
    try:
        async with build_client(cache_backend="redis", redis_url=redis_url, cache_prefix=prefix) as client:
            response = await client.get("/health/ready")
    finally:
        delete_prefix(redis_url, prefix)
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["status"] == "ok"


async def test_ready_is_503_naming_the_broker_when_a_redis_broker_is_unreachable(
    build_client: ClientFactory,
) -> None:
    dead_broker = f"redis://127.0.0.1:{free_port()}/1"
    async with build_client(broker_url=dead_broker) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] == "fail"


async def test_a_check_that_hangs_fails_at_its_timeout() -> None:
    async def hang() -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    result = await run_check(ReadinessCheck("slow", hang), limit_seconds=0.05)
    assert time.monotonic() - started < 1
    assert not result.ok
    assert result.error == "no answer within 0.05 s"
    assert result.as_dict()["status"] == "fail"


async def test_a_check_answering_false_fails_and_optional_checks_are_marked() -> None:
    async def unavailable() -> bool:
        return False

    result = await run_check(ReadinessCheck("cache", unavailable, required=False), limit_seconds=1)
    assert not result.ok
    assert result.as_dict() == {
        "status": "fail",
        "latency_ms": result.latency_ms,
        "required": False,
        "error": "unavailable",
    }
