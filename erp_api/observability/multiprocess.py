"""Metrics shared by several worker processes (prometheus-client's multiprocess mode).

Each worker writes its metric values to files in one directory; ``/metrics`` in any worker reads
and merges all of them, so a scrape that lands on any worker sees the totals of all. The directory
must be empty when the first worker starts (stale files would add old counts), so the parent
process empties it once, before it starts the workers: ``python -m erp_api serve`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from erp_api.settings import VAR_DIR, Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_DIR = VAR_DIR / "prometheus-multiproc"


def reset_directory(directory: Path) -> None:
    """Create ``directory`` or delete the metric files a previous run left in it."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def prepare_workers(settings: Settings) -> Path | None:
    """Set up multiprocess metrics before the server starts; returns the directory, if one is used.

    Used when ``PROMETHEUS_MULTIPROC_DIR`` is set, and always with ``ERP_WORKERS`` > 1 (then
    ``var/prometheus-multiproc`` unless the variable names another directory). Call it in the parent
    process before any metric exists, i.e. before the app is imported.
    """
    directory = settings.prometheus_multiproc_dir
    if directory is None and settings.workers > 1:
        directory = DEFAULT_DIR
    if directory is None:
        return None
    directory = directory.resolve()
    reset_directory(directory)
    # prometheus-client reads the variable itself, in every worker, when the first metric is created.
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def render_all_workers(directory: Path) -> bytes:
    """The text exposition of the metrics of every worker that wrote to ``directory``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def mark_worker_exited(directory: Path) -> None:
    """Drop this process's live gauges (in progress, pool use) from the totals as it shuts down."""
    mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]
