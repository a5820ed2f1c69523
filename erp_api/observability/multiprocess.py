"""Metrics shared by several worker processes (prometheus-client's multiprocess mode).

Each worker writes its metric values to files in one directory; a scrape of any worker reads and
merges all of them, so it sees the totals of all. The directory must be empty when the first
worker starts (stale files would add old counts), so the parent process empties it once, before
it starts the workers, with ``use_directory``: ``python -m erp_api serve`` for the API workers
(``prepare_workers``), ``python -m tasks worker`` for the Celery pool processes.

Several servers or Celery workers may share one base directory (two on a host, or containers
sharing a volume): each keeps its files in a sub-directory of its own (``own_directory``), so that
none deletes another's files at start and each serves only its own totals. A Celery worker always
does; an API server does under the default directory (``PROMETHEUS_MULTIPROC_DIR`` unset), while a
directory named in that variable is used as it is (give each server its own).

The merged metrics carry the ``process_*`` metrics (CPU, memory, file descriptors) of every live
process that writes to the directory, labelled by ``pid``: the multiprocess collector of
prometheus-client has none, and a process can read another's from ``/proc`` on the same host.

prometheus-client chooses where values live when it is first imported, so this module imports it
only inside the functions that read the files: the parent can set up the directory before anything
imports prometheus-client, and its forked children inherit the choice.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from erp_api.settings import VAR_DIR, Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_DIR = VAR_DIR / "prometheus-multiproc"
# prometheus-client names its files <kind>_<pid>.db or gauge_<mode>_<pid>.db.
METRIC_FILE_PID = re.compile(r"_(\d+)\.db$")


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

    Used when ``PROMETHEUS_MULTIPROC_DIR`` is set, and always with ``ERP_WORKERS`` > 1 (then this
    server's own sub-directory of ``var/prometheus-multiproc`` unless the variable names another
    directory). Call it in the parent process before any metric exists, i.e. before the app is imported.
    """
    directory = settings.prometheus_multiproc_dir
    if directory is None and settings.workers > 1:
        directory = own_directory(DEFAULT_DIR)
    if directory is None:
        return None
    return use_directory(directory)


def own_directory(base: Path) -> Path:
    """This process's own sub-directory of ``base``, ``<host>-<pid>``, for ``use_directory``.

    Removes the sub-directories that processes of this host left behind (they are gone); those of
    live ones, and of other hosts sharing the volume, stay untouched.
    """
    host = socket.gethostname()
    base.mkdir(parents=True, exist_ok=True)
    for sibling in base.glob(f"{glob.escape(host)}-*"):
        pid = sibling.name.removeprefix(f"{host}-")
        if sibling.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)
    return base / f"{host}-{os.getpid()}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def writing_pids(directory: Path) -> set[int]:
    """The ids of the processes that wrote metric files to ``directory`` (live or not)."""
    pids = set()
    for path in directory.glob("*.db"):
        match = METRIC_FILE_PID.search(path.name)
        if match:
            pids.add(int(match.group(1)))
    return pids


class ProcessesCollector:
    """The ``process_*`` metrics of this process and every live one writing to ``directory``, by pid."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import ProcessCollector
        from prometheus_client.metrics_core import Metric

        families: dict[str, Metric] = {}
        for pid in sorted(writing_pids(self._directory) | {os.getpid()}):
            if not process_alive(pid):
                continue
            # Reads /proc/<pid>; yields nothing where there is no /proc or the process just ended.
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
            for family in reader.collect():
                merged = families.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from families.values()


def all_workers_registry(directory: Path) -> CollectorRegistry:
    """A registry of the merged metrics of every process that wrote to ``directory``, and their
    ``process_*`` metrics."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(ProcessesCollector(directory))
    return registry


def render_all_workers(directory: Path) -> bytes:
    """The text exposition of the metrics of every worker that wrote to ``directory``."""
    from prometheus_client import generate_latest

    return generate_latest(all_workers_registry(directory))


def mark_worker_exited(directory: Path) -> None:
    """Drop this process's live gauges (in progress, pool use) from the totals as it shuts down."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(os.getpid(), str(directory))  # type: ignore[no-untyped-call]
