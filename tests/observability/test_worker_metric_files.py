"""Several workers given one metrics directory: each keeps its own files, and every scrape carries
the process metrics (CPU, memory) of each live process that writes there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from erp_api.observability.multiprocess import MULTIPROC_ENV, own_directory, render_all_workers
from testing.processes import ROOT, WORKER_READY_MARK, free_port, running_worker, tasks_worker_command
from tests.observability.conftest import parse_samples


@contextmanager
def writing_process(directory: Path) -> Iterator[subprocess.Popen[str]]:
    """A live process that wrote a counter to ``directory`` (multiprocess mode) and waits."""
    program = textwrap.dedent(
        """
        import sys
        from prometheus_client import Counter
        Counter("probe", "Counts one probe").inc()
        print("written", flush=True)
        sys.stdin.read()
        """
    )
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    process = subprocess.Popen(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "written\n"
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def pids_with(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> set[int]:
    return {int(dict(labels)["pid"]) for sample, labels in samples if sample == name}


def test_a_own_directory_is_its_own_and_leaves_live_workers_files_alone(tmp_path: Path) -> None:
    base = tmp_path / "metrics"
    host = socket.gethostname()
    mine = own_directory(base)
    assert mine == base / f"{host}-{os.getpid()}"
    with writing_process(base / f"{host}-1") as other:
        (base / f"{host}-1").rename(base / f"{host}-{other.pid}")  # as if it had chosen its own
        live = base / f"{host}-{other.pid}"
        dead = base / f"{host}-{2**22 + 1}"  # above Linux's largest pid: no such process
        dead.mkdir()
        (dead / "counter_5.db").write_bytes(b"left by a worker that is gone")
        elsewhere = base / "another-host-7"
        elsewhere.mkdir()
        own_directory(base)
        assert live.is_dir() and list(live.glob("counter_*.db"))
        assert not dead.exists()
        assert elsewhere.is_dir(), "another host's worker is not ours to judge"


def test_the_merged_exposition_carries_each_live_process_metrics(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    with writing_process(directory) as first, writing_process(directory) as second:
        samples = parse_samples(render_all_workers(directory).decode())
        assert samples[("probe_total", frozenset())] == 2
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
            assert {first.pid, second.pid, os.getpid()} <= pids_with(samples, name), name
        second.kill()
        second.wait(timeout=10)
        samples = parse_samples(render_all_workers(directory).decode())
    assert second.pid not in pids_with(samples, "process_resident_memory_bytes")
    assert first.pid in pids_with(samples, "process_resident_memory_bytes")
    assert samples[("probe_total", frozenset())] == 2, "a finished process's counts stay in the totals"


@pytest.mark.slow
@pytest.mark.redis
def _scrape_until_both_processes_report(port: int, timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        pids = pids_with(parse_samples(scrape.text), "process_resident_memory_bytes")
        if len(pids) >= 2 or time.monotonic() > deadline:
            return scrape
        time.sleep(0.2)


def test_two_workers_sharing_a_directory_keep_and_serve_their_own_metrics(
    tmp_path: Path, redis_broker: tuple[str, str]
) -> None:
    base = tmp_path / "metrics"
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        workers = []
        for index, port in enumerate(ports):
            env = {
                "ERP_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3",
                "ERP_BROKER_URL": redis_broker[0],
                "ERP_BROKER_KEY_PREFIX": redis_broker[1],
                "ERP_CACHE_BACKEND": "memory",
                "ERP_LOG_LEVEL": "INFO",
                "ERP_WORKER_METRICS_PORT": str(port),
                MULTIPROC_ENV: str(base),
            }
            log = tmp_path / f"worker-{index}.log"
            command = tasks_worker_command()
            workers.append(stack.enter_context(running_worker(env, log, command=command, wait_ready=False)))
        for worker in workers:  # started side by side, the second while the first sets up
            worker.wait_until(lambda process: WORKER_READY_MARK.decode() in process.log(), timeout=60)
        directories = {worker.pid: base / f"{socket.gethostname()}-{worker.pid}" for worker in workers}
        # The pool process writes its first samples a moment after the main process says it is ready.
        scrapes = [_scrape_until_both_processes_report(port) for port in ports]
        files = {
            pid: sorted(path.name for path in directory.glob("*.db"))
            for pid, directory in directories.items()
        }
        for worker in workers:  # warm shutdowns side by side
            worker.popen.send_signal(signal.SIGTERM)
    assert all(files.values()), files
    assert all(directory.is_dir() for directory in directories.values())
    for worker, scrape in zip(workers, scrapes, strict=True):
        assert scrape.status_code == 200
        pids = pids_with(parse_samples(scrape.text), "process_resident_memory_bytes")
        # The worker's main process and its pool process; none of the other worker's.
        assert worker.pid in pids and len(pids) == 2, (worker.pid, pids)
        other = next(other for other in workers if other is not worker)
        assert other.pid not in pids
