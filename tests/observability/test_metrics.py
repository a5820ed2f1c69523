"""The metric functions other packages call (cache events, ingestion, analyses, Celery)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY

from erp_api.observability import metrics
from tests import services
from tests.charges.helpers import create
from tests.observability.conftest import ClientFactory, scrape, value


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_cache_events_are_counted_per_namespace_and_result() -> None:
    before = sample("cache_requests_total", namespace="ns_test", result="hit")
    for _ in range(3):
        metrics.record_cache_event("ns_test", "hit")
    metrics.record_cache_event("ns_test", "miss")
    assert sample("cache_requests_total", namespace="ns_test", result="hit") - before == 3
    assert sample("cache_requests_total", namespace="ns_test", result="miss") >= 1


def test_evictions_are_counted_apart_from_requests() -> None:
    before = sample("cache_evictions_total", namespace="ns_evict")
    metrics.record_cache_event("ns_evict", "eviction")
    assert sample("cache_evictions_total", namespace="ns_evict") - before == 1
    assert sample("cache_requests_total", namespace="ns_evict", result="eviction") == 0


async def test_cache_reads_of_real_requests_reach_the_counter(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    hits = sample("cache_requests_total", namespace="charges", result="hit")
    misses = sample("cache_requests_total", namespace="charges", result="miss")
    for _ in range(3):
        await client.get(f"/api/v1/charges/{charge['id']}")
    assert sample("cache_requests_total", namespace="charges", result="miss") - misses == 1
    assert sample("cache_requests_total", namespace="charges", result="hit") - hits == 2


def test_an_ingest_batch_counts_measurements_and_its_size() -> None:
    ingested = sample("measurements_ingested_total")
    batches = sample("ingest_batch_size_count")
    in_le_50 = sample("ingest_batch_size_bucket", le="50.0")
    metrics.observe_ingest_batch(40, wait_seconds=0.004)
    metrics.set_ingest_queue_depth(7)
    assert sample("measurements_ingested_total") - ingested == 40
    assert sample("ingest_batch_size_count") - batches == 1
    assert sample("ingest_batch_size_bucket", le="50.0") - in_le_50 == 1
    assert sample("ingest_queue_depth") == 7
    metrics.set_ingest_queue_depth(0)


def test_analysis_and_task_outcomes_are_counted() -> None:
    analyses = sample("analyses_total", outcome="anomaly")
    metrics.observe_analysis("anomaly", 0.3)
    assert sample("analyses_total", outcome="anomaly") - analyses == 1

    failures = sample("celery_tasks_total", task="tasks.test", outcome="failure")
    runs = sample("celery_task_runtime_seconds_count", task="tasks.test")
    metrics.observe_task_run("tasks.test", "failure", 1.5)
    metrics.observe_task_run("tasks.test", "success", 0.5)
    assert sample("celery_tasks_total", task="tasks.test", outcome="failure") - failures == 1
    assert sample("celery_task_runtime_seconds_count", task="tasks.test") - runs == 2
    with pytest.raises(ValueError, match="task outcome"):
        metrics.observe_task_run("tasks.test", "exploded", 1.0)


def test_queue_and_worker_gauges_hold_the_last_sample() -> None:
    metrics.set_queue_length("analysis", 12)
    metrics.set_queue_length("analysis", 3)
    metrics.set_celery_workers(2)
    metrics.observe_task_queue_wait("tasks.test", -0.5)
    assert sample("celery_queue_length", queue="analysis") == 3
    assert sample("celery_workers") == 2
    assert sample("celery_task_queue_wait_seconds_bucket", task="tasks.test", le="0.01") >= 1


def test_a_backends_own_counters_are_added_as_they_grow() -> None:
    stats = {"l1_hits": 5, "l1_misses": 1, "l1_bypassed": 0, "l1_entries": 3, "subscriptions": 1}
    counters = metrics.BackendCounters(lambda: stats)
    hits, subscriptions = (
        sample("cache_l1_reads_total", result="hit"),
        sample("cache_invalidation_channel_events_total", event="subscription"),
    )
    counters.record()
    stats.update(l1_hits=9, l1_entries=4)
    counters.record()
    counters.record()  # nothing new: nothing added
    assert sample("cache_l1_reads_total", result="hit") - hits == 9
    assert sample("cache_invalidation_channel_events_total", event="subscription") - subscriptions == 1
    assert sample("cache_l1_entries") == 4
    stats.update(l1_hits=2)  # counting started again (a new backend): its count is all new
    counters.record()
    assert sample("cache_l1_reads_total", result="hit") - hits == 11


def test_a_backend_without_counters_adds_nothing() -> None:
    before = sample("cache_l1_reads_total", result="hit")
    metrics.BackendCounters(dict).record()
    assert sample("cache_l1_reads_total", result="hit") == before


@pytest.mark.redis
async def test_the_l1_reads_of_a_tiered_cache_reach_the_metrics(build_client: ClientFactory) -> None:
    # Operators tune ERP_CACHE_COHERENCE_WINDOW_MS by the share of reads the L1 turns away.
    with services.own_redis_prefix("erp_l1_metrics", separator="") as (redis_url, prefix):
        async with build_client(cache_backend="redis", redis_url=redis_url, cache_prefix=prefix) as client:
            charge = await create(client, 1)
            before = await scrape(client)
            hits = 0.0
            for _ in range(200):  # until the channel is up and the L1 holds the charge
                await client.get(f"/api/v1/charges/{charge['id']}")
                samples = await scrape(client)
                hits = value(samples, "cache_l1_reads_total", result="hit") - value(
                    before, "cache_l1_reads_total", result="hit"
                )
                if hits >= 2:
                    break
                await asyncio.sleep(0.01)
    assert hits >= 2
    assert value(samples, "cache_invalidation_channel_events_total", event="subscription") >= 1
    assert value(samples, "cache_l1_entries") >= 1
