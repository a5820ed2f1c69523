"""The workers' Celery application: the shared configuration (``erp_api.jobs.celery_config``) with
every task registered.

The module attribute ``app`` exists for the ``celery -A tasks.celery_app`` command line: it is built
from the environment on first access, and opens no connection (Celery connects on first use).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from erp_api.jobs.celery_config import celery_app
from erp_api.settings import Settings, load_settings
from tasks import aggregations, analysis, maintenance, webhooks
from tasks.worker import connect_worker_signals


def create_celery(settings: Settings) -> Celery:
    """A configured Celery app with every task registered; connects to nothing until used."""
    app = celery_app(settings)
    analysis.register(app)
    maintenance.register(app)
    aggregations.register(app)
    webhooks.register(app)
    return app


def __getattr__(name: str) -> Any:
    """``app``, built on first access, for ``celery -A tasks.celery_app``; importing builds nothing."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    application = create_celery(load_settings())
    connect_worker_signals(application)
    globals()["app"] = application
    return application
