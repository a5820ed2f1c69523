"""Celery's configuration for this service, built from the Settings: shared by the API's publisher
and the workers, so both always agree on the broker, the queues and the serializers.

* Broker: Redis in production (``ERP_BROKER_URL=redis://...``), or by default an embedded SQLite
  file (``sqla+sqlite:///var/broker.sqlite3``, see ``sqlite_broker.py``) that needs no server.
* JSON only, no pickle; results are not kept by Celery (the job records live in the database).
* A task is acknowledged after it ran (``acks_late``), one message at a time per process, and
  requeued if its worker process dies, so a killed worker does not lose a job; the tasks are
  idempotent, so the redelivery is harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue

from erp_api.jobs.names import HIGH_PRIORITY, QUEUES, TASK_ROUTES
from erp_api.jobs.schedule import beat_schedule
from erp_api.settings import Settings

SQLITE_BROKER_PREFIX = "sqla+"
SQLITE_TRANSPORT = "erp_api.jobs.sqlite_broker:Transport"
# Grace between the analysis's own time limit (asyncio, clean failure) and Celery's soft limit.
SOFT_LIMIT_GRACE_SECONDS = 2.0


def broker_settings(settings: Settings) -> dict[str, Any]:
    """Broker URL, transport and transport options for the configured broker."""
    url = settings.broker_url
    timeout = settings.broker_connect_timeout_seconds
    if url.startswith(SQLITE_BROKER_PREFIX):
        return {
            "broker_url": url.removeprefix(SQLITE_BROKER_PREFIX),
            "broker_transport": SQLITE_TRANSPORT,
            "broker_transport_options": {
                "polling_interval": settings.broker_poll_interval_seconds,
                "connect_timeout": timeout,
                "visibility_timeout": settings.broker_visibility_timeout_seconds,
            },
        }
    visibility = settings.broker_visibility_timeout_seconds
    options: dict[str, Any] = {
        # Unacknowledged messages of a lost worker come back after this; it exceeds the hard time
        # limit plus the longest retry countdown, so a running task is never delivered twice.
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1, min(10, int(visibility // 10))),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": timeout,
        # Longer than the 1 s BRPOP, short enough that a publish to a dead connection fails.
        "socket_timeout": max(5.0, 2 * timeout),
        "socket_keepalive": True,
        "health_check_interval": 25,
        "max_connections": 20,
    }
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return {"broker_url": url, "broker_transport_options": options}


def celery_config(settings: Settings) -> dict[str, Any]:
    soft = settings.analysis_soft_time_limit_seconds
    hard = settings.analysis_hard_time_limit_seconds
    return {
        **broker_settings(settings),
        "broker_connection_timeout": settings.broker_connect_timeout_seconds,
        "broker_connection_retry_on_startup": True,
        "broker_pool_limit": 10,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": settings.result_backend_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_soft_time_limit": min(soft + SOFT_LIMIT_GRACE_SECONDS, (soft + hard) / 2),
        "task_time_limit": hard,
        "task_default_queue": HIGH_PRIORITY,
        "task_queues": tuple(
            Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]
            for name in QUEUES
        ),
        "task_routes": TASK_ROUTES,
        "task_create_missing_queues": True,
        # A publish to a down broker fails within about a second instead of blocking a request.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0.0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        },
        "task_send_sent_event": False,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        # Logs go to stdout as JSON lines; a redirected stdout would feed them back into logging.
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(settings),
        # Beat keeps its schedule in memory: the persistent scheduler stores it with shelve (pickle).
        "beat_scheduler": "celery.beat:Scheduler",
    }


def celery_app(settings: Settings) -> Celery:
    """A configured Celery app with no task registered: enough to publish tasks by name."""
    app = Celery("erp_api", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.erp_settings = settings
    return app
