"""Worker process wiring: logging, the per-process runtime, the metrics endpoint, broker gauges and
the recovery loop of analyses whose worker died (``tasks/recovery.py``).

Connected to the command-line app only (``tasks.celery_app.app``); apps built in tests or in the
API publish tasks and never run a worker.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from erp_api.observability.logging import configure_logging
from erp_api.settings import Settings
from tasks.recovery import RecoveryLoop
from tasks.runtime import discard_runtime, runtime_for
from tasks.sampler import BrokerSampler
from tasks.worker_metrics import start_metrics_server, worker_process_exited


def connect_worker_signals(app: Celery) -> None:
    settings: Settings = app.erp_settings
    uid = f"erp-{id(app)}"

    def setup_logging(**_kwargs: Any) -> None:
        # Any receiver here stops Celery from configuring logging itself: ours writes JSON lines.
        configure_logging(settings.log_level)

    sampler = BrokerSampler(app, timeout=settings.broker_connect_timeout_seconds)
    recovery = RecoveryLoop(settings)

    serving_metrics = False

    def worker_init(sender: Any = None, **_kwargs: Any) -> None:
        nonlocal serving_metrics
        serving_metrics = start_metrics_server(settings)

    def worker_ready(**_kwargs: Any) -> None:
        # Once the pool processes are forked: they need neither the threads nor their connections, and
        # must not inherit a lock a thread held at the fork. prometheus-client's multiprocess values
        # share one lock per process; a child forked while the sampler set a gauge waited on it for
        # ever, at its first metric, with a task it had received and never started.
        if serving_metrics:
            sampler.start()
        recovery.start()

    def process_init(**_kwargs: Any) -> None:
        # In each pool process, after the fork: its own loop, engine and connections.
        runtime_for(app)

    def process_shutdown(**_kwargs: Any) -> None:
        discard_runtime(app)
        worker_process_exited(settings)

    def worker_shutdown(**_kwargs: Any) -> None:
        sampler.stop()
        recovery.stop()
        discard_runtime(app)  # the solo pool ran tasks in the main process

    signals.setup_logging.connect(setup_logging, weak=False, dispatch_uid=f"{uid}-logging")
    signals.worker_init.connect(worker_init, weak=False, dispatch_uid=f"{uid}-init")
    signals.worker_ready.connect(worker_ready, weak=False, dispatch_uid=f"{uid}-ready")
    signals.worker_process_init.connect(process_init, weak=False, dispatch_uid=f"{uid}-process-init")
    signals.worker_process_shutdown.connect(
        process_shutdown, weak=False, dispatch_uid=f"{uid}-process-shutdown"
    )
    signals.worker_shutdown.connect(worker_shutdown, weak=False, dispatch_uid=f"{uid}-shutdown")
