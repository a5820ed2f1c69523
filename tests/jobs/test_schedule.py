"""The schedule of the periodic jobs, in one place and changed through the settings."""

from __future__ import annotations

from datetime import timedelta

from erp_api.jobs.schedule import beat_schedule, periodic_jobs
from erp_api.settings import load_settings
from tasks.celery_app import create_celery


def test_the_default_schedule_runs_the_reaper_warming_and_the_webhook_sweeper_but_not_retention() -> None:
    schedule = beat_schedule(load_settings())
    assert set(schedule) == {"reap_analyses", "warm_quality_summaries", "sweep_webhooks"}
    assert schedule["sweep_webhooks"]["schedule"] == timedelta(seconds=30)
    assert schedule["sweep_webhooks"]["options"] == {"queue": "webhooks", "expires": 30.0}
    assert schedule["sweep_webhooks"]["task"] == "erp.webhooks.sweep"
    assert schedule["reap_analyses"]["schedule"] == timedelta(seconds=60)
    assert schedule["reap_analyses"]["options"] == {"queue": "maintenance", "expires": 60.0}
    assert schedule["warm_quality_summaries"]["options"]["queue"] == "aggregations"


def test_intervals_and_retention_follow_the_settings() -> None:
    settings = load_settings(
        reaper_interval_seconds=15,
        cache_warm_interval_seconds=0,
        retention_enabled=True,
        retention_interval_seconds=3600,
        webhook_sweep_interval_seconds=10,
    )
    schedule = beat_schedule(settings)
    assert set(schedule) == {"reap_analyses", "retention_cleanup", "sweep_webhooks"}
    assert schedule["sweep_webhooks"]["schedule"] == timedelta(seconds=10)
    assert schedule["reap_analyses"]["schedule"] == timedelta(seconds=15)
    assert schedule["retention_cleanup"]["schedule"] == timedelta(hours=1)
    assert schedule["retention_cleanup"]["task"] == "erp.maintenance.retention_cleanup"


def test_every_job_stays_known_to_operators_when_it_is_not_scheduled() -> None:
    names = [job.name for job in periodic_jobs(load_settings(cache_warm_interval_seconds=0))]
    assert names == ["reap_analyses", "warm_quality_summaries", "retention_cleanup", "sweep_webhooks"]


def test_beat_uses_the_schedule_of_the_settings() -> None:
    app = create_celery(load_settings(reaper_interval_seconds=5))
    assert app.conf.beat_schedule["reap_analyses"]["schedule"] == timedelta(seconds=5)
