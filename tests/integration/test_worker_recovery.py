"""Analyses of a worker that died are finished by another worker within seconds, with no beat running:
one it was running, and one whose message it had received but not yet claimed.

Real worker processes on a real Redis broker, as in ``test_worker.py`` (whose fixtures these tests
share). The broker's visibility timeout stays at its default (an hour), so the killed worker's
message never comes back during a test: only the survivor's recovery loop, which requeues an
analysis whose heartbeat stopped, can finish it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from erp_api.migrate import upgrade
from testing.processes import running_worker
from tests.analyses.helpers import measured_charge, submit, wait_for
from tests.integration import test_worker as worker_tests

pytestmark = pytest.mark.slow
api, stack, wait_for_job = worker_tests.api, worker_tests.stack, worker_tests._wait_for_job
# The fixtures of test_worker.py: a Redis key prefix of the test's own, and its database.
redis_prefix, worker_database = worker_tests.redis_prefix, worker_tests.worker_database

# Short intervals so that the test takes seconds; the defaults (10 s, 60 s, 30 s) recover in 90 s.
RECOVERY = {
    "analysis_heartbeat_interval_seconds": 0.5,
    "analysis_heartbeat_timeout_seconds": 2.0,
    "analysis_recovery_interval_seconds": 1.0,
}


@pytest.mark.redis
async def test_a_worker_killed_mid_analysis_without_beat_has_it_finished_once_by_another_worker(
    tmp_path: Path, redis_prefix: tuple[str, str], worker_database: str
) -> None:
    settings, env = stack(
        tmp_path,
        redis_prefix,
        database_url=worker_database,
        analysis_task_delay_seconds=3.0,  # the kill lands mid-analysis
        analysis_soft_time_limit_seconds=6.0,
        analysis_hard_time_limit_seconds=8.0,
        analysis_retry_backoff_max_seconds=0.5,
        **RECOVERY,
    )
    assert settings.broker_visibility_timeout_seconds >= 3600  # no redelivery by the broker
    await asyncio.to_thread(upgrade, settings)
    async with api(settings) as (client, ctx):
        charge_id = await measured_charge(client, points=200)
        with running_worker(env, tmp_path / "first.log") as first:
            accepted = await submit(client, charge_id)
            running = await wait_for(client, accepted["id"], {"running"})
            first.kill()
        killed_at = time.monotonic()
        with running_worker(env, tmp_path / "second.log") as second:
            done = await wait_for(client, accepted["id"], {"succeeded", "failed"}, within=60.0)
            recovered_in = time.monotonic() - killed_at
            status = await wait_for_job(client, "run_analysis")  # recorded just after the result
            await asyncio.sleep(2 * RECOVERY["analysis_recovery_interval_seconds"])  # passes to come
            after = (await client.get(f"/api/v1/analyses/{accepted['id']}")).json()
            queues = (await client.get("/api/v1/jobs/status")).json()["queues"]
        direct = await ctx.quality.analyze_charge(charge_id, "nelson", None)
    assert running["attempts"] == 1
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2  # the killed claim, then the survivor's: nothing ran a third time
    assert done["result"] == orjson.loads(orjson.dumps(direct))
    assert recovered_in < 120.0
    assert '"event":"reaper_acted"' in second.log()
    run_analysis = next(job for job in status["jobs"] if job["name"] == "run_analysis")
    assert (run_analysis["successes"], run_analysis["failures"]) == (1, 0)  # one result, stored once
    assert after == done
    assert queues["high_priority"] == 0  # requeued once, published once
    assert "Traceback" not in second.log()


# A consumer that takes the analysis's message as a worker does (unacknowledged: kombu keeps it in
# the broker's unacked set, which only the visibility timeout empties) and is killed before the claim.
TAKE_AND_DIE = """
import os, signal
from erp_api.jobs.celery_config import celery_app
from erp_api.settings import load_settings
with celery_app(load_settings()).connection_for_read() as connection:
    message = connection.default_channel.basic_get("high_priority", no_ack=False)
    print(message.decode()[0][0], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.redis
async def test_an_analysis_whose_worker_died_between_receiving_and_claiming_it_is_run_once_by_another(
    tmp_path: Path, redis_prefix: tuple[str, str], worker_database: str
) -> None:
    settings, env = stack(
        tmp_path,
        redis_prefix,
        database_url=worker_database,
        analysis_redeliver_after_seconds=2.0,
        **RECOVERY,
    )
    assert settings.broker_visibility_timeout_seconds >= 3600  # no redelivery by the broker
    await asyncio.to_thread(upgrade, settings)
    async with api(settings) as (client, _):
        charge_id = await measured_charge(client, points=200)
        accepted = await submit(client, charge_id)  # no worker yet: the message waits in line
        taken = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", TAKE_AND_DIE],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == -9, taken.stderr
        assert int(taken.stdout) == accepted["id"]
        stranded = (await client.get(f"/api/v1/analyses/{accepted['id']}")).json()
        queues = (await client.get("/api/v1/jobs/status")).json()["queues"]
        lost_at = time.monotonic()
        with running_worker(env, tmp_path / "second.log") as second:
            done = await wait_for(client, accepted["id"], {"succeeded", "failed"}, within=60.0)
            recovered_in = time.monotonic() - lost_at
            status = await wait_for_job(client, "run_analysis")
            await asyncio.sleep(2 * RECOVERY["analysis_recovery_interval_seconds"])  # passes to come
            after = (await client.get(f"/api/v1/analyses/{accepted['id']}")).json()
    assert (stranded["status"], queues["high_priority"]) == ("queued", 0)  # in nobody's line
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1  # the lost message never ran
    assert recovered_in < 30.0
    assert '"redelivered":1' in second.log()
    run_analysis = next(job for job in status["jobs"] if job["name"] == "run_analysis")
    assert (run_analysis["successes"], run_analysis["failures"]) == (1, 0)
    assert after == done
    assert "Traceback" not in second.log()
