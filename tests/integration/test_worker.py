"""Analyses run by a real Celery worker process on a real Redis broker (and once on the embedded one).

The API runs in the test process; the worker is ``celery -A tasks.celery_app worker`` in a process
of its own, configured through the same ERP_* variables. Every test uses its own Redis key prefix
(kombu's ``global_keyprefix``) and its own SQLite database file, shared by the test and the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import redis

from erp_api.app import create_app
from erp_api.migrate import upgrade
from erp_api.quality.spc.series import Baseline
from erp_api.settings import Settings, load_settings
from testing.processes import ServiceProcess, free_port, running_worker, tasks_worker_command, worker_command
from tests import services
from tests.analyses.helpers import measured_charge, submit, wait_for
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """(broker URL, key prefix) on the shared Redis; every key under the prefix is deleted afterwards."""
    with services.own_redis_prefix("erp_worker_test") as url_and_prefix:
        yield url_and_prefix


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def worker_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database shared by the test and its workers: a SQLite file, or a
    PostgreSQL database of the test's own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
        return
    name, url = services.create_postgres_database()
    try:
        yield url
    finally:
        services.drop_postgres_database(name)


def stack(tmp_path: Path, broker: tuple[str, str], **overrides: Any) -> tuple[Settings, dict[str, str]]:
    """Settings for the in-process API and the same settings as ERP_* variables for the worker."""
    url, prefix = broker
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3",
        "broker_url": url,
        "broker_key_prefix": prefix,
        "cache_backend": "memory",
        "log_level": "INFO",
        **overrides,
    }
    settings = load_settings(**values)
    env = {f"ERP_{name.upper()}": str(value) for name, value in values.items()}
    return settings, env


@asynccontextmanager
async def api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, application.state.resources


@pytest.mark.redis
async def test_worker_runs_a_submitted_analysis_to_the_result_of_analyze_charge(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    metrics_port = free_port()
    settings, env = stack(tmp_path, redis_prefix, worker_metrics_port=metrics_port)
    await asyncio.to_thread(upgrade, settings)
    async with api(settings) as (client, ctx):
        charge_id = await measured_charge(client, points=1_000)
        # As `make worker` starts it (metrics of all pool processes on one port), from elsewhere.
        with running_worker(
            env, tmp_path / "worker.log", command=tasks_worker_command(), cwd=tmp_path
        ) as worker:
            accepted = await submit(client, charge_id, baseline={"diameter": {"center": 10.0, "sigma": 0.05}})
            done = await wait_for(client, accepted["id"], {"succeeded", "failed"})
            manual = await client.post("/api/v1/jobs/reap_analyses/run")
            assert manual.status_code == 202
            status = await _wait_for_job(client, "reap_analyses")
            async with httpx.AsyncClient() as plain:
                metrics = (await plain.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        direct = await ctx.quality.analyze_charge(charge_id, "nelson", {"diameter": Baseline(10.0, 0.05)})
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    assert done["error"] is None
    assert done["result"] == orjson.loads(orjson.dumps(direct))
    assert done["result"]["anomaly_count"] > 0
    jobs = {job["name"]: job for job in status["jobs"]}
    assert jobs["run_analysis"]["successes"] == 1
    assert jobs["reap_analyses"]["runs"] == 1
    assert jobs["reap_analyses"]["last_status"] == "succeeded"
    assert status["queues"] == {"high_priority": 0, "aggregations": 0, "maintenance": 0, "webhooks": 0}
    assert "Traceback" not in worker.log()
    assert 'celery_tasks_total{outcome="success",task="run_analysis"} 1.0' in metrics
    assert 'analyses_total{outcome="anomaly"} 1.0' in metrics


RETRY_EVENT = '"event":"analysis_retry"'


async def _logged(process: ServiceProcess, text: str, within: float = 30.0) -> None:
    try:
        async with asyncio.timeout(within):  # a hang guard
            while text not in process.log():  # noqa: ASYNC110 - polling a log file, no event to wait on
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{text} not logged within {within} s:\n{process.log()[-3000:]}") from None


async def _wait_for_job(client: httpx.AsyncClient, name: str, within: float = 20.0) -> dict[str, Any]:
    try:
        async with asyncio.timeout(within):
            while True:
                status: dict[str, Any] = (await client.get("/api/v1/jobs/status")).json()
                if any(job["name"] == name and job["runs"] for job in status["jobs"]):
                    return status
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"job {name} did not run within {within} s") from None


@pytest.mark.redis
async def test_worker_killed_mid_task_the_analysis_completes_once_on_a_new_worker(
    tmp_path: Path, redis_prefix: tuple[str, str], worker_database: str
) -> None:
    # The task sleeps 1 s inside its run, so the kill lands mid-task; a short visibility timeout
    # lets Redis hand the unacknowledged message to the next worker within seconds.
    settings, env = stack(
        tmp_path,
        redis_prefix,
        database_url=worker_database,
        analysis_task_delay_seconds=1.0,
        analysis_soft_time_limit_seconds=1.5,
        analysis_hard_time_limit_seconds=2.0,
        analysis_retry_backoff_max_seconds=0.5,
        broker_visibility_timeout_seconds=3.0,
        # Below the visibility timeout, so the redelivered message may always take the claim over.
        analysis_stuck_after_seconds=2.6,
    )
    await asyncio.to_thread(upgrade, settings)
    async with api(settings) as (client, ctx):
        charge_id = await measured_charge(client, points=200)
        with running_worker(env, tmp_path / "first.log") as first:
            accepted = await submit(client, charge_id)
            running = await wait_for(client, accepted["id"], {"running"})
            first.kill()
        assert running["attempts"] == 1
        assert (await client.get(f"/api/v1/analyses/{accepted['id']}")).json()["status"] == "running"
        with running_worker(env, tmp_path / "second.log"):
            done = await wait_for(client, accepted["id"], {"succeeded", "failed"})
            status = await _wait_for_job(client, "run_analysis")  # recorded just after the result
        direct = await ctx.quality.analyze_charge(charge_id, "nelson", None)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert done["result"] == orjson.loads(orjson.dumps(direct))
    run_analysis = next(job for job in status["jobs"] if job["name"] == "run_analysis")
    assert run_analysis["successes"] == 1  # the killed run never finished; one result, stored once
    assert status["queues"]["high_priority"] == 0


@pytest.mark.redis
async def test_worker_killed_after_the_result_commits_but_before_the_ack_stores_one_result(
    tmp_path: Path, redis_prefix: tuple[str, str], worker_database: str
) -> None:
    # The run sleeps 3 s after committing its outcome, before the task returns and its message is
    # acknowledged: the kill lands there. The limits leave that sleep room (Celery's soft limit is
    # 4.5 s), and the visibility timeout hands the unacknowledged message to the next worker.
    settings, env = stack(
        tmp_path,
        redis_prefix,
        database_url=worker_database,
        analysis_task_pause_after_commit_seconds=3.0,
        analysis_soft_time_limit_seconds=4.0,
        analysis_hard_time_limit_seconds=5.0,
        analysis_retry_backoff_max_seconds=0.5,
        broker_visibility_timeout_seconds=6.0,
        analysis_stuck_after_seconds=6.0,
    )
    await asyncio.to_thread(upgrade, settings)
    broker_url, prefix = redis_prefix
    broker = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        async with api(settings) as (client, ctx):
            charge_id = await measured_charge(client, points=200)
            with running_worker(env, tmp_path / "first.log") as first:
                accepted = await submit(client, charge_id)
                done = await wait_for(client, accepted["id"], {"succeeded", "failed"})
                first.kill()
            before = (await client.get("/api/v1/jobs/status")).json()
            unacked_after_kill = broker.hlen(f"{prefix}unacked")
            with running_worker(env, tmp_path / "second.log") as second:
                status = await _wait_for_job(client, "run_analysis")  # the redelivered message ran
            after = (await client.get(f"/api/v1/analyses/{accepted['id']}")).json()
            direct = await ctx.quality.analyze_charge(charge_id, "nelson", None)
        unacked_at_end = broker.hlen(f"{prefix}unacked")
    finally:
        broker.close()
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    assert done["result"] == orjson.loads(orjson.dumps(direct))
    # Killed after the commit but before the ack: the first run never finished, its message stayed.
    assert "task_finished" not in first.log()
    assert next(job for job in before["jobs"] if job["name"] == "run_analysis")["runs"] == 0
    assert unacked_after_kill == 1
    # The redelivery found the analysis finished and left it as it was: one result, one claim.
    assert "'outcome': 'skipped'" in second.log()
    assert after == done
    run_analysis = next(job for job in status["jobs"] if job["name"] == "run_analysis")
    assert (run_analysis["runs"], run_analysis["failures"]) == (1, 0)
    assert status["queues"]["high_priority"] == 0
    assert unacked_at_end == 0


@pytest.mark.redis
@pytest.mark.postgres
async def test_database_outage_during_a_task_is_retried_until_it_succeeds(
    tmp_path: Path, redis_prefix: tuple[str, str]
) -> None:
    name, direct_url = await asyncio.to_thread(services.create_postgres_database)
    pg = urlsplit(direct_url)
    try:
        with TcpProxy((pg.hostname or "127.0.0.1", pg.port or 5432)) as proxy:
            proxied_url = direct_url.replace(pg.netloc, f"{pg.username}@127.0.0.1:{proxy.port}")
            settings, env = stack(
                tmp_path,
                redis_prefix,
                database_url=direct_url,
                analysis_task_delay_seconds=1.0,
                # The first retry comes 1-2 s after the failure: time to restore the database first.
                analysis_retry_backoff_seconds=2.0,
                analysis_retry_backoff_max_seconds=3.0,
                db_connect_timeout_seconds=1.0,
            )
            env["ERP_DATABASE_URL"] = proxied_url
            await asyncio.to_thread(upgrade, settings)
            async with api(settings) as (client, ctx):
                charge_id = await measured_charge(client, points=200)
                with running_worker(env, tmp_path / "worker.log") as worker:
                    accepted = await submit(client, charge_id)
                    await wait_for(client, accepted["id"], {"running"})
                    proxy.cut()  # the worker's database goes away while the task runs...
                    await _logged(worker, RETRY_EVENT)  # ...until the task fails on it
                    proxy.restore()
                    done = await wait_for(client, accepted["id"], {"succeeded", "failed"})
                direct = await ctx.quality.analyze_charge(charge_id, "nelson", None)
    finally:
        await asyncio.to_thread(services.drop_postgres_database, name)
    assert done["status"] == "succeeded", done
    retries = worker.log().count(RETRY_EVENT)
    assert retries >= 1
    # The first claim, then one attempt per retry (normally one: it found the database back).
    assert done["attempts"] == 1 + retries
    assert done["result"] == orjson.loads(orjson.dumps(direct))


async def test_embedded_sqlite_broker_works_with_a_real_worker(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3",
        broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        cache_backend="memory",
    )
    env = {"ERP_DATABASE_URL": settings.database_url, "ERP_BROKER_URL": settings.broker_url}
    await asyncio.to_thread(upgrade, settings)
    async with api(settings) as (client, _ctx):
        charge_id = await measured_charge(client, points=200)
        accepted = await submit(client, charge_id)  # published before any worker runs
        with running_worker(env, tmp_path / "worker.log", command=worker_command("solo")):
            done = await wait_for(client, accepted["id"], {"succeeded", "failed"})
            queues = (await client.get("/api/v1/jobs/status")).json()["queues"]
    assert done["status"] == "succeeded", done
    assert done["result"]["parameters"][0]["parameter"] == "diameter"
    assert queues["high_priority"] == 0
