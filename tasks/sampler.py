"""Broker gauges for the worker's metrics: queue lengths and the number of workers that answer.

Prometheus alerts on a queue backlog and on no worker running (deploy/prometheus/alerts.yml), so
the values must be fresh even when nobody looks at the job status. The worker's main process samples
them on a daemon thread every ``interval`` seconds while its metrics port is open.
"""

from __future__ import annotations

import threading

import structlog
from celery import Celery

from erp_api.jobs.client import broker_queue_lengths
from erp_api.observability.metrics import set_celery_workers, set_queue_length

SAMPLE_INTERVAL_SECONDS = 15.0
PING_TIMEOUT_SECONDS = 1.0
log = structlog.get_logger("tasks.sampler")


class BrokerSampler:
    def __init__(self, app: Celery, *, timeout: float, interval: float = SAMPLE_INTERVAL_SECONDS) -> None:
        self._app = app
        self._timeout = timeout
        self._interval = interval
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="erp-broker-sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval)

    def sample_once(self) -> None:
        try:
            lengths = broker_queue_lengths(self._app, self._timeout)
        except Exception as exc:  # a sampler must outlive a broker outage
            log.warning("broker_sample_failed", error=repr(exc))
            return
        for queue, length in lengths.items():
            set_queue_length(queue, length)
        set_celery_workers(self._workers())

    def _workers(self) -> int:
        try:
            replies = self._app.control.ping(timeout=PING_TIMEOUT_SECONDS)
        except Exception:
            # The embedded broker has no broadcast (remote control); this worker is alive.
            return 1
        return max(1, len(replies or []))
