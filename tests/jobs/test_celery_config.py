"""The Celery app as configured from the settings: safe delivery, JSON only, queues and limits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from erp_api.jobs.celery_config import celery_config
from erp_api.jobs.names import (
    AGGREGATIONS,
    ANALYSIS_TASK,
    HIGH_PRIORITY,
    MAINTENANCE,
    REAP_TASK,
    RETENTION_TASK,
    WARM_TASK,
)
from erp_api.settings import load_settings
from tasks.celery_app import create_celery
from testing.processes import ROOT


def test_a_killed_worker_does_not_lose_its_task() -> None:
    config = celery_config(load_settings())
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1


def test_only_json_is_sent_or_accepted() -> None:
    config = celery_config(load_settings())
    assert config["task_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["result_accept_content"] == ["json"]
    assert "pickle" not in repr(config)
    assert config["beat_scheduler"] == "celery.beat:Scheduler"  # the persistent one shelves (pickles)


def test_time_limits_come_from_the_settings_with_the_soft_one_first() -> None:
    settings = load_settings(analysis_soft_time_limit_seconds=30, analysis_hard_time_limit_seconds=40)
    config = celery_config(settings)
    assert 30 < config["task_soft_time_limit"] < config["task_time_limit"] == 40


def test_redis_broker_options_redeliver_only_after_the_longest_task_and_use_the_prefix() -> None:
    settings = load_settings(
        broker_url="redis://broker:6379/1", broker_key_prefix="erp-test:", broker_connect_timeout_seconds=2
    )
    config = celery_config(settings)
    options = config["broker_transport_options"]
    assert config["broker_url"] == "redis://broker:6379/1"
    assert options["global_keyprefix"] == "erp-test:"
    assert options["visibility_timeout"] > settings.analysis_hard_time_limit_seconds
    assert options["socket_connect_timeout"] == 2
    assert options["socket_timeout"] >= 2
    assert config["broker_connection_timeout"] == 2


def test_the_embedded_default_broker_is_a_sqlite_file_on_the_projects_transport() -> None:
    config = celery_config(load_settings())
    assert config["broker_url"] == f"sqlite:///{ROOT}/var/broker.sqlite3"
    assert config["broker_transport"] == "erp_api.jobs.sqlite_broker:Transport"
    assert config["broker_transport_options"]["polling_interval"] == 0.1


def test_a_visibility_timeout_shorter_than_a_task_is_refused_at_start() -> None:
    from erp_api.settings import SettingsError

    with pytest.raises(SettingsError, match="ERP_BROKER_VISIBILITY_TIMEOUT_SECONDS"):
        load_settings(analysis_hard_time_limit_seconds=120, broker_visibility_timeout_seconds=100)


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (ANALYSIS_TASK, HIGH_PRIORITY),
        (WARM_TASK, AGGREGATIONS),
        (REAP_TASK, MAINTENANCE),
        (RETENTION_TASK, MAINTENANCE),
    ],
)
def test_each_task_is_registered_and_routed_to_its_queue(task: str, queue: str) -> None:
    app = create_celery(load_settings())
    assert task in app.tasks
    route = app.amqp.router.route({}, task)
    assert route["queue"].name == queue


def test_importing_the_module_builds_no_app_and_the_cli_attribute_builds_one() -> None:
    probe = (
        "import tasks.celery_app as m; assert 'app' not in vars(m); "
        "a = m.app; assert vars(m)['app'] is a and 'erp.analysis.run' in a.tasks"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
