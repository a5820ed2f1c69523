"""The worker's broker gauges: queue lengths and workers, sampled without ever raising."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY

from erp_api.settings import load_settings
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
