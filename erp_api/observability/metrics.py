"""Every metric erp-api exports, with stable names, and the small functions other packages call.

The metrics live in prometheus-client's default registry. With ``PROMETHEUS_MULTIPROC_DIR`` set
before this module is imported, their values are kept in files shared by all worker processes
(see ``multiprocess.py``); each gauge therefore declares how the workers' values combine.

Label values are always bounded sets (route templates, namespaces, task names, outcomes), never
raw user input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Protocol

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double the exposition and multiprocess mode cannot produce them anyway.
disable_created_metrics()  # type: ignore[no-untyped-call]

# 1 ms to 10 s; 0.15 s is the latency objective, so the fraction of requests under it is exact.
HTTP_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
DB_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# HTTP (recorded by middleware.ObservabilityMiddleware)
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending the last byte of its response",
    ["method", "route"],
    buckets=HTTP_LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served right now",
    ["method"],
    multiprocess_mode="livesum",
)

# Cache (copied from the CacheManager's own counters by CacheCounters)
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache reads by namespace and result: hit, miss, coalesced or bypass (each read ends as one of"
    " these), and error (a backend failure, counted in addition)",
    ["namespace", "result"],
)
CACHE_EVICTIONS = Counter(
    "cache_evictions_total",
    "Entries a bounded cache backend dropped to stay within its limits",
    ["namespace"],
)
# A tiered cache's own counters (copied from CacheManager.backend_stats by CacheCounters)
CACHE_L1_READS = Counter(
    "cache_l1_reads_total",
    "Reads of a tiered cache by how its per-process L1 took them: hit, miss (read from Redis), or"
    " bypassed (its invalidation channel not fresh within the coherence window: read from Redis)",
    ["result"],
)
CACHE_CHANNEL_EVENTS = Counter(
    "cache_invalidation_channel_events_total",
    "A tiered cache's invalidation channel: subscriptions made, connections lost, messages applied",
    ["event"],
)
CACHE_L1_ENTRIES = Gauge(
    "cache_l1_entries", "Entries held in the per-process L1 of a tiered cache", multiprocess_mode="livesum"
)

# Database (recorded by db_metrics.instrument_engine)
DB_QUERY_DURATION = Histogram(
    "db_query_duration_seconds",
    "Time the database driver spent executing one statement, by SQL operation",
    ["operation"],
    buckets=DB_LATENCY_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "db_pool_connections_max",
    "Connections the pool may hand out at most (pool size plus overflow)",
    multiprocess_mode="livesum",
)

# Measurement ingestion (group commit in erp_api/quality/ingest.py)
MEASUREMENTS_INGESTED = Counter("measurements_ingested_total", "Measurements committed to the database")
INGEST_BATCH_SIZE = Histogram(
    "ingest_batch_size",
    "Measurements written by one group commit",
    buckets=BATCH_SIZE_BUCKETS,
)
INGEST_QUEUE_DEPTH = Gauge(
    "ingest_queue_depth",
    "Measurements waiting for the next group commit",
    multiprocess_mode="livesum",
)
INGEST_QUEUE_WAIT = Histogram(
    "ingest_queue_wait_seconds",
    "Time a measurement waited in the ingestion queue before its batch committed",
    buckets=DB_LATENCY_BUCKETS,
)

# Quality analyses
ANALYSES = Counter("analyses_total", "Quality analyses finished, by outcome", ["outcome"])
ANALYSIS_DURATION = Histogram(
    "analysis_duration_seconds",
    "Time one quality analysis took",
    buckets=JOB_LATENCY_BUCKETS,
)

# Background jobs (Celery)
CELERY_QUEUE_LENGTH = Gauge(
    "celery_queue_length",
    "Messages waiting in a broker queue, as last sampled",
    ["queue"],
    multiprocess_mode="mostrecent",
)
CELERY_WORKERS = Gauge(
    "celery_workers",
    "Celery workers that answered the last ping",
    multiprocess_mode="mostrecent",
)
CELERY_TASKS = Counter(
    "celery_tasks_total",
    "Task executions finished, by task name and outcome (success, failure, retry)",
    ["task", "outcome"],
)
CELERY_TASK_RUNTIME = Histogram(
    "celery_task_runtime_seconds",
    "Time a task body ran, by task name",
    ["task"],
    buckets=JOB_LATENCY_BUCKETS,
)
CELERY_TASK_QUEUE_WAIT = Histogram(
    "celery_task_queue_wait_seconds",
    "Time from publishing a task to a worker starting it, by task name",
    ["task"],
    buckets=JOB_LATENCY_BUCKETS,
)

TASK_OUTCOMES = frozenset({"success", "failure", "retry"})

# Webhooks (erp_api/webhooks/delivery.py)
WEBHOOK_ATTEMPTS = Counter(
    "webhook_delivery_attempts_total",
    "Webhook delivery attempts finished, by outcome (delivered, retry, failed: the last one failed)",
    ["outcome"],
)
WEBHOOK_OUTCOMES = frozenset({"delivered", "retry", "failed"})

# Quality alerts (erp_api/quality/alerts/rule_checker.py, alerts.py); rules are the SPC rule ids (N1..WE4)
QUALITY_ALERTS_OPENED = Counter(
    "erp_quality_alerts_opened_total",
    "Quality alerts opened by the on-ingest rule check, by rule",
    ["rule"],
)
QUALITY_ALERTS_OPEN = Gauge(
    "erp_quality_alerts_open",
    "Quality alerts not yet resolved or dismissed, by rule, as last counted",
    ["rule"],
    multiprocess_mode="mostrecent",
)
RULE_CHECK_BACKLOG = Gauge(
    "erp_quality_rule_checks_pending",
    "Commits of measurements waiting for the on-ingest rule check, as last counted",
    multiprocess_mode="mostrecent",
)

# Live events (erp_api/events): streams connected, events sent, and how old an event is when sent.
EVENT_CLIENTS = Gauge(
    "erp_event_clients", "Event streams (SSE) connected to this process", multiprocess_mode="livesum"
)
EVENTS_DELIVERED = Counter("erp_events_delivered_total", "Events sent to event stream clients")
EVENT_LAG = Histogram(
    "erp_event_lag_seconds",
    "From an event's commit to its sending on a stream",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)


class CacheStats(Protocol):
    """What ``CacheCounters`` reads: a ``cache.CacheManager``."""

    def stats(self) -> dict[str, dict[str, int]]: ...

    def backend_stats(self) -> dict[str, int]: ...


class CacheCounters:
    """Copies a cache manager's own counters into the metrics: ``record()`` adds what each counter
    gained since the last call. The manager counts every read per namespace (``stats``: hits,
    misses, ...) and a tiered backend its L1 and channel (``backend_stats``); counting them here
    rather than per read keeps a Prometheus counter's lock off the cached read path.

    Called with each flush of the request ledger (reads happen with requests, so the metrics trail
    them by a flush window at most), before every scrape, and after every task of a worker.
    """

    _NAMESPACE_COUNTERS: Final = {
        "hits": "hit",
        "misses": "miss",
        "coalesced": "coalesced",
        "bypassed": "bypass",
        "errors": "error",
    }
    _NAMESPACE_NAMES: Final = (*_NAMESPACE_COUNTERS, "evictions")
    _BACKEND_COUNTERS: Final = {
        "l1_hits": CACHE_L1_READS.labels("hit"),
        "l1_misses": CACHE_L1_READS.labels("miss"),
        "l1_bypassed": CACHE_L1_READS.labels("bypassed"),
        "subscriptions": CACHE_CHANNEL_EVENTS.labels("subscription"),
        "losses": CACHE_CHANNEL_EVENTS.labels("loss"),
        "messages": CACHE_CHANNEL_EVENTS.labels("message"),
    }

    def __init__(self, cache: CacheStats) -> None:
        self._cache = cache
        self._seen: dict[tuple[str, str], int] = {}
        # Resolved label children: .labels() validates and locks on every call, a dict lookup does not.
        self._children: dict[tuple[str, str], Counter] = {}

    def record(self) -> None:
        for namespace, counts in self._cache.stats().items():
            for name in self._NAMESPACE_NAMES:
                now = counts.get(name, 0)
                if now != self._seen.get((namespace, name), 0):
                    self._add(self._namespace_counter(namespace, name), (namespace, name), now)
        backend = self._cache.backend_stats()
        for name, counter in self._BACKEND_COUNTERS.items():
            now = backend.get(name, 0)
            if now != self._seen.get(("", name), 0):
                self._add(counter, ("", name), now)
        if "l1_entries" in backend:
            CACHE_L1_ENTRIES.set(backend["l1_entries"])

    def _add(self, counter: Counter, seen_as: tuple[str, str], now: int) -> None:
        before = self._seen.get(seen_as, 0)
        counter.inc(now - before if now > before else now)  # lower: counting started again
        self._seen[seen_as] = now

    def _namespace_counter(self, namespace: str, name: str) -> Counter:
        child = self._children.get((namespace, name))
        if child is None:
            child = self._children[(namespace, name)] = (
                CACHE_EVICTIONS.labels(namespace)
                if name == "evictions"
                else CACHE_REQUESTS.labels(namespace, self._NAMESPACE_COUNTERS[name])
            )
        return child


def observe_ingest_batch(size: int, wait_seconds: float | None = None, stored: int | None = None) -> None:
    """One commit of ``size`` measurements, ``stored`` of them written (default: all).

    ``wait_seconds``: how long the oldest of them waited in the queue.
    """
    MEASUREMENTS_INGESTED.inc(size if stored is None else stored)
    INGEST_BATCH_SIZE.observe(size)
    if wait_seconds is not None:
        INGEST_QUEUE_WAIT.observe(wait_seconds)


def set_ingest_queue_depth(depth: int) -> None:
    """Measurements accepted by this process and not yet committed."""
    INGEST_QUEUE_DEPTH.set(depth)


def observe_analysis(outcome: str, seconds: float) -> None:
    """A finished quality analysis: ``outcome`` such as ok, anomaly, insufficient_data or error."""
    ANALYSES.labels(outcome).inc()
    ANALYSIS_DURATION.observe(seconds)


def observe_task_run(task: str, outcome: str, seconds: float) -> None:
    """A finished task execution; ``outcome`` is success, failure or retry."""
    if outcome not in TASK_OUTCOMES:
        raise ValueError(f"task outcome must be one of {sorted(TASK_OUTCOMES)}, not {outcome!r}")
    CELERY_TASKS.labels(task, outcome).inc()
    CELERY_TASK_RUNTIME.labels(task).observe(seconds)


def observe_task_queue_wait(task: str, seconds: float) -> None:
    """Time a task spent between being published and a worker starting it."""
    CELERY_TASK_QUEUE_WAIT.labels(task).observe(max(seconds, 0.0))


def observe_webhook_attempt(outcome: str) -> None:
    """A finished webhook delivery attempt; ``outcome`` is delivered, retry or failed."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"webhook outcome must be one of {sorted(WEBHOOK_OUTCOMES)}, not {outcome!r}")
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def observe_alerts_opened(rules: Iterable[str]) -> None:
    """One alert opened per rule id in ``rules``."""
    tally: dict[str, int] = {}
    for rule in rules:
        tally[rule] = tally.get(rule, 0) + 1
    for rule, count in tally.items():
        QUALITY_ALERTS_OPENED.labels(rule).inc(count)


def set_open_alerts(counts: Mapping[str, int]) -> None:
    """Open alerts per rule, as counted now; pass every rule (0 for none) so that no value goes stale."""
    for rule, count in counts.items():
        QUALITY_ALERTS_OPEN.labels(rule).set(count)


def set_rule_check_backlog(pending: int) -> None:
    """Outbox rows of the rule check waiting, as counted now."""
    RULE_CHECK_BACKLOG.set(pending)


def set_queue_length(queue: str, length: int) -> None:
    """Messages waiting in ``queue`` when it was last sampled."""
    CELERY_QUEUE_LENGTH.labels(queue).set(length)


def set_celery_workers(count: int) -> None:
    """Workers that answered the last ping."""
    CELERY_WORKERS.set(count)


def set_event_clients(count: int) -> None:
    """Event streams connected to this process now."""
    EVENT_CLIENTS.set(count)


def observe_event_sent(lag_seconds: float) -> None:
    """One event sent on a stream, ``lag_seconds`` after it was recorded (replays included)."""
    EVENTS_DELIVERED.inc()
    EVENT_LAG.observe(max(lag_seconds, 0.0))
