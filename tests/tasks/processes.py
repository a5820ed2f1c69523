"""Real worker processes for integration tests: start, wait until ready, stop or kill them.

Workers run in their own session (process group), so a test can SIGKILL a worker together with its
pool processes, exactly as a lost machine would, without touching any other process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.integration.server import ROOT

READY_MARK = b"ready."


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if READY_MARK in self.log_path.read_bytes():
                return
            time.sleep(0.05)
        raise TimeoutError(f"worker not ready within {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no warm shutdown, no acknowledgements."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown: SIGTERM to the main process only, which lets its pool finish the running task."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def worker_command(pool: str = "prefork") -> list[str]:
    command = [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", f"--pool={pool}"]
    if pool == "prefork":
        command.append("--concurrency=1")
    return [*command, "--without-heartbeat", "--without-gossip", "--without-mingle"]


@contextmanager
def running_worker(
    env: Mapping[str, str], log_path: Path, *, command: list[str] | None = None, cwd: Path = ROOT
) -> Iterator[Worker]:
    """A started, ready worker configured by ``env`` (ERP_* settings); stopped afterwards."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command or worker_command(),
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log_path)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
