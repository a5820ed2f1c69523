"""Metrics shared by several worker processes (prometheus-client's multiprocess mode).

Each worker writes its metric values to files in one directory; a scrape of any worker reads and
merges all of them, so it sees the totals of all. The directory must be empty when the first
worker starts (stale files would add old counts), so the parent process empties it once, before
it starts the workers, with ``use_directory``: ``python -m erp_api serve`` for the API workers
(``prepare_workers``), ``python -m tasks worker`` for the Celery pool processes.

prometheus-client chooses where values live when it is first imported, so this module imports it
only inside the functions that read the files: the parent can set up the directory before anything
imports prometheus-client, and its forked children inherit the choice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from erp_api.settings import VAR_DIR, Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_DIR = VAR_DIR / "prometheus-multiproc"


def use_directory(directory: Path) -> Path:
    """Make ``directory`` (resolved) the empty metrics directory of this process and its children.

    Creates it or deletes the metric files a previous run left in it, then sets
    ``PROMETHEUS_MULTIPROC_DIR``, which prometheus-client reads in every process when it is first
    imported. Call it in the parent, before anything imports prometheus-client.
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


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
    return use_directory(directory)


def all_workers_registry(directory: Path) -> CollectorRegistry:
    """A registry that collects the merged metrics of every process that wrote to ``directory``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def render_all_workers(directory: Path) -> bytes:
    """The text exposition of the metrics of every worker that wrote to ``directory``."""
    from prometheus_client import generate_latest

    return generate_latest(all_workers_registry(directory))


def mark_worker_exited(directory: Path) -> None:
    """Drop this process's live gauges (in progress, pool use) from the totals as it shuts down."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]
