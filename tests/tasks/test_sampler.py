"""The worker's broker gauges: queue lengths and workers, sampled without ever raising."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import signals
from prometheus_client import REGISTRY

from erp_api.settings import load_settings
from tasks import worker
from tasks.celery_app import create_celery
from tasks.sampler import BrokerSampler


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_sample_sets_each_queues_length_and_the_worker_count(tmp_path: Path) -> None:
    app = create_celery(load_settings(broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3"))
    for analysis_id in range(3):
        app.send_task("erp.analysis.run", args=[analysis_id], queue="high_priority")
    app.send_task("erp.maintenance.reap_analyses", queue="maintenance")
    BrokerSampler(app, timeout=2.0).sample_once()
    assert gauge("celery_queue_length", queue="high_priority") == 3
    assert gauge("celery_queue_length", queue="maintenance") == 1
    assert gauge("celery_queue_length", queue="aggregations") == 0
    assert gauge("celery_workers") == 1


def test_a_down_broker_leaves_the_last_values_and_raises_nothing(tmp_path: Path) -> None:
    app = create_celery(load_settings(broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3"))
    app.send_task("erp.maintenance.reap_analyses", queue="maintenance")
    BrokerSampler(app, timeout=2.0).sample_once()
    down = create_celery(
        load_settings(broker_url="redis://127.0.0.1:9/0", broker_connect_timeout_seconds=0.2)
    )
    BrokerSampler(down, timeout=0.2).sample_once()
    assert gauge("celery_queue_length", queue="maintenance") == 1


def test_the_sampler_starts_once_the_pool_processes_are_forked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pool process forked while the sampler's thread set a gauge inherited prometheus-client's
    # multiprocess lock held, and hung at its first metric with a task received and never started.
    started: list[str] = []

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        def start(self) -> None:
            started.append(self.name)

        def stop(self, *_args: object) -> None:
            pass

    monkeypatch.setattr(worker, "BrokerSampler", lambda *_a, **_k: Recording("sampler"))
    monkeypatch.setattr(worker, "RecoveryLoop", lambda *_a, **_k: Recording("recovery"))
    monkeypatch.setattr(worker, "start_metrics_server", lambda _settings: True)
    app = create_celery(load_settings(broker_url=f"sqla+sqlite:///{tmp_path}/broker.sqlite3"))
    worker.connect_worker_signals(app)
    uid = f"erp-{id(app)}"
    try:
        signals.worker_init.send(sender=None)
        assert started == [], "nothing runs beside the main thread while the pool forks"
        signals.worker_ready.send(sender=None)
        assert started == ["sampler", "recovery"]
    finally:
        for signal, name in (
            (signals.setup_logging, "logging"),
            (signals.worker_init, "init"),
            (signals.worker_ready, "ready"),
            (signals.worker_process_init, "process-init"),
            (signals.worker_process_shutdown, "process-shutdown"),
            (signals.worker_shutdown, "shutdown"),
        ):
            signal.disconnect(dispatch_uid=f"{uid}-{name}")
