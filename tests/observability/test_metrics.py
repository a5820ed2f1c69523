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


class CountingCache:
    """What CacheCounters reads of a CacheManager: its namespaces' counters and its backend's."""

    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, int]] = {}
        self.backend: dict[str, int] = {}

    def stats(self) -> dict[str, dict[str, int]]:
        return {name: dict(counts) for name, counts in self.namespaces.items()}

    def backend_stats(self) -> dict[str, int]:
        return dict(self.backend)


def test_cache_reads_are_counted_per_namespace_and_result_as_they_grow() -> None:
    cache = CountingCache()
    counters = metrics.CacheCounters(cache)
    hits, misses = sample("cache_requests_total", namespace="ns_test", result="hit"), 0.0
    cache.namespaces["ns_test"] = {"hits": 3, "misses": 1, "coalesced": 0, "bypassed": 0, "errors": 0}
    counters.record()
    cache.namespaces["ns_test"].update(hits=5)
    counters.record()
    counters.record()  # nothing new: nothing added
    assert sample("cache_requests_total", namespace="ns_test", result="hit") - hits == 5
    assert sample("cache_requests_total", namespace="ns_test", result="miss") - misses == 1
    assert sample("cache_requests_total", namespace="ns_test", result="coalesced") == 0
    cache.namespaces["ns_test"].update(hits=2)  # counting started again (a new manager): all new
    counters.record()
    assert sample("cache_requests_total", namespace="ns_test", result="hit") - hits == 7


def test_evictions_are_counted_apart_from_requests() -> None:
    cache = CountingCache()
    before = sample("cache_evictions_total", namespace="ns_evict")
    cache.namespaces["ns_evict"] = {"hits": 0, "evictions": 1}
    metrics.CacheCounters(cache).record()
    assert sample("cache_evictions_total", namespace="ns_evict") - before == 1
    assert sample("cache_requests_total", namespace="ns_evict", result="eviction") == 0


async def test_cache_reads_of_real_requests_reach_the_scrape(client: httpx.AsyncClient) -> None:
    charge = await create(client, 1)
    before = await scrape(client)
    for _ in range(3):
        await client.get(f"/api/v1/charges/{charge['id']}")
    after = await scrape(client)
    labels = {"namespace": "charges"}
    assert (
        value(after, "cache_requests_total", **labels, result="miss")
        - value(before, "cache_requests_total", **labels, result="miss")
        == 1
    )
    assert (
        value(after, "cache_requests_total", **labels, result="hit")
        - value(before, "cache_requests_total", **labels, result="hit")
        == 2
    )


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
    cache = CountingCache()
    cache.backend = {"l1_hits": 5, "l1_misses": 1, "l1_bypassed": 0, "l1_entries": 3, "subscriptions": 1}
    counters = metrics.CacheCounters(cache)
    hits, subscriptions = (
        sample("cache_l1_reads_total", result="hit"),
        sample("cache_invalidation_channel_events_total", event="subscription"),
    )
    counters.record()
    cache.backend.update(l1_hits=9, l1_entries=4)
    counters.record()
    counters.record()  # nothing new: nothing added
    assert sample("cache_l1_reads_total", result="hit") - hits == 9
    assert sample("cache_invalidation_channel_events_total", event="subscription") - subscriptions == 1
    assert sample("cache_l1_entries") == 4
    cache.backend.update(l1_hits=2)  # counting started again (a new backend): its count is all new
    counters.record()
    assert sample("cache_l1_reads_total", result="hit") - hits == 11


def test_a_backend_without_counters_adds_nothing() -> None:
    before = sample("cache_l1_reads_total", result="hit")
    metrics.CacheCounters(CountingCache()).record()
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
