"""The task client publishes within a bounded time, and tells a down broker from a working one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from erp_api.jobs.client import build_task_client
from erp_api.jobs.dispatch import BrokerUnavailable
from erp_api.settings import load_settings


async def test_published_tasks_show_in_the_queue_lengths_of_the_embedded_broker(tmp_path: Path) -> None:
    client = build_task_client(load_settings(broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3"))
    try:
        assert await client.queue_lengths() == {
            "high_priority": 0,
            "aggregations": 0,
            "maintenance": 0,
            "webhooks": 0,
        }
        await client.enqueue_analysis(7)
        await client.enqueue_analysis(8)
        await client.enqueue_webhook_delivery(9)
        await client.enqueue_webhook_delivery(10, countdown=5.0)
        task_id = await client.run_job("reap_analyses")
        assert len(task_id) == 36
        assert await client.queue_lengths() == {
            "high_priority": 2,
            "aggregations": 0,
            "maintenance": 1,
            "webhooks": 2,
        }
        for not_periodic in ("no_such_job", "run_analysis"):
            with pytest.raises(KeyError):
                await client.run_job(not_periodic)
        assert [job.name for job in client.jobs()] == [
            "run_analysis",
            "deliver_webhook",
            "reap_analyses",
            "warm_quality_summaries",
            "retention_cleanup",
            "sweep_webhooks",
        ]
    finally:
        await client.close()


async def test_a_down_broker_fails_fast_as_broker_unavailable() -> None:
    settings = load_settings(broker_url="redis://127.0.0.1:9/0", broker_connect_timeout_seconds=0.5)
    client = build_task_client(settings)
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await client.enqueue_analysis(1)
        with pytest.raises(BrokerUnavailable):
            await client.enqueue_webhook_delivery(1)
        with pytest.raises(BrokerUnavailable):
            await client.queue_lengths()
        assert time.monotonic() - started < 6
    finally:
        await client.close()
