"""The worker's own ``/metrics`` endpoint (``ERP_WORKER_METRICS_PORT``; 0, the default of a local
run, turns it off; the image in deploy/ sets 9808, where Prometheus scrapes it).

Prometheus cannot reach task metrics through the API: they live in the worker processes. A worker
started with ``python -m tasks worker`` (``make worker``, ``erp-worker worker``) keeps its pool
processes' metrics in a sub-directory of its own of ``PROMETHEUS_MULTIPROC_DIR`` (default
``var/prometheus-worker``; prometheus-client's multiprocess mode, set up by ``tasks/__main__.py``
with ``erp_api.observability.multiprocess.own_directory`` and ``use_directory`` before anything
imports prometheus-client), and its main process serves the merged values, with the ``process_*``
metrics of each of its processes, on the metrics port. Started any other way (e.g.
``celery -A tasks.celery_app worker --pool=solo``) it serves its own process's.
"""

from __future__ import annotations

import structlog
from prometheus_client import REGISTRY, start_http_server

from erp_api.observability.multiprocess import all_workers_registry, mark_worker_exited
from erp_api.settings import Settings

log = structlog.get_logger("tasks.worker_metrics")


def start_metrics_server(settings: Settings) -> bool:
    """Serve the metrics on ERP_WORKER_METRICS_PORT; False if that is 0 (off)."""
    port = settings.worker_metrics_port
    if not port:
        return False
    # Set (through PROMETHEUS_MULTIPROC_DIR) by use_directory before the app's settings were read.
    directory = settings.prometheus_multiproc_dir
    registry = REGISTRY if directory is None else all_workers_registry(directory)
    start_http_server(port, addr=settings.host, registry=registry)
    log.info("worker_metrics_serving", port=port, multiprocess=directory is not None)
    return True


def worker_process_exited(settings: Settings) -> None:
    directory = settings.prometheus_multiproc_dir
    if directory is not None:
        mark_worker_exited(directory)
