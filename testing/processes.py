"""Real service processes for tests, benchmarks and load runs: the API server and the Celery worker.

Every process runs in a session (process group) of its own, with its stdout and stderr in a log
file, so that a caller can read what it said, SIGKILL it together with its children (uvicorn
workers, the Celery pool) exactly as a lost machine would, and never touch another process.
``stop()`` is a warm shutdown: SIGTERM to the main process, which stops its own children, then
SIGKILL to the whole group if it is not gone within the stop timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
APP_FACTORY = "erp_api.app:create_app"
HEALTH_PATH = "/health"
WORKER_READY_MARK = b"ready."
"""What a Celery worker logs (at INFO) once it consumes."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command() -> list[str]:
    """``python -m erp_api serve``: host and port from ERP_HOST/ERP_PORT, ``ERP_WORKERS`` workers,
    multiprocess metrics and JSON logs set up as in production."""
    return [sys.executable, "-m", "erp_api", "serve"]


def uvicorn_command(port: int, factory: str = APP_FACTORY, workers: int = 1) -> list[str]:
    """uvicorn serving the app ``factory`` on 127.0.0.1:``port``, without its own access log."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", factory,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--workers", str(workers),
    ]  # fmt: skip


def worker_command(pool: str = "prefork") -> list[str]:
    """``celery -A tasks.celery_app worker`` with one pool process and no cluster chatter."""
    command = [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", f"--pool={pool}"]
    if pool == "prefork":
        command.append("--concurrency=1")
    return [*command, "--without-heartbeat", "--without-gossip", "--without-mingle"]


def tasks_worker_command() -> list[str]:
    """``python -m tasks worker`` as ``make worker`` starts it (metrics of all pool processes on
    ERP_WORKER_METRICS_PORT), with one pool process."""
    return [
        sys.executable,
        "-m",
        "tasks",
        "worker",
        "--concurrency=1",
        "--without-gossip",
        "--without-mingle",
    ]


class ServiceProcess:
    """A started child process in its own process group, its output going to ``log_path``."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self._kept_log: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        if self._kept_log is not None:
            return self._kept_log
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready: Callable[[ServiceProcess], bool], timeout: float) -> None:
        """Poll ``ready`` until true; raises if the process exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while not ready(self):
            if self.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready within {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the process and its children at once: no shutdown, no acknowledgements."""
        if self.poll() is None:
            # Only while the leader is unreaped is the group id certainly still ours.
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown: SIGTERM to the main process; SIGKILL to its group after ``timeout``."""
        if self.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def _keep_log_and_delete_file(self) -> None:
        self._kept_log = self.log()
        self.log_path.unlink(missing_ok=True)


@contextmanager
def running_process(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    log_path: Path | None = None,
    cwd: Path = ROOT,
    ready: Callable[[ServiceProcess], bool] | None = None,
    start_timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> Iterator[ServiceProcess]:
    """Start ``command`` with ``env`` over the current environment, wait until ``ready`` (if given),
    and stop it on exit. Without ``log_path`` the output goes to a temporary file that is deleted
    afterwards; ``log()`` still returns it."""
    full_env = {**os.environ, **env}
    if cwd != ROOT:  # the project's packages are importable from anywhere
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    temporary = log_path is None
    if log_path is None:
        handle, path = tempfile.mkstemp(prefix=f"erp-{name}-", suffix=".log")
        os.close(handle)
        log_path = Path(path)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(  # noqa: S603 - the callers' own commands
            list(command), cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process = ServiceProcess(name, popen, log_path)
    failed = False
    try:
        if ready is not None:
            process.wait_until(ready, start_timeout)
        yield process
    except BaseException:
        failed = True
        raise
    finally:
        process.stop(stop_timeout)
        if failed:
            # What the process said goes with a failure in its presence (pytest shows it with the report).
            print(
                f"--- {name} ({' '.join(command)}), its last output ---\n{process.log()[-4000:]}",
                file=sys.stderr,
            )
        if temporary:
            process._keep_log_and_delete_file()


@dataclass(frozen=True)
class Server:
    """A running API server: where it answers, and its process."""

    base_url: str
    port: int
    process: ServiceProcess


def _answers_health(base_url: str) -> Callable[[ServiceProcess], bool]:
    def answers(_process: ServiceProcess) -> bool:
        try:
            return httpx.get(f"{base_url}{HEALTH_PATH}", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    return answers


@contextmanager
def running_server(
    env: Mapping[str, str],
    *,
    command: Sequence[str] | None = None,
    factory: str = APP_FACTORY,
    workers: int = 1,
    log_path: Path | None = None,
    start_timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> Iterator[Server]:
    """An API server on a free port, configured by ``env`` (ERP_* settings), serving once
    ``GET /health`` answers 200; stopped (SIGTERM, then SIGKILL) afterwards.

    The default command is uvicorn with the app ``factory``; a ``command`` of its own (such as
    ``serve_command()``) must take the port from ERP_HOST/ERP_PORT, which are always set.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {**env, "ERP_HOST": "127.0.0.1", "ERP_PORT": str(port)}
    with running_process(
        "server",
        command or uvicorn_command(port, factory, workers),
        server_env,
        log_path=log_path,
        ready=_answers_health(base_url),
        start_timeout=start_timeout,
        stop_timeout=stop_timeout,
    ) as process:
        yield Server(base_url, port, process)


def _worker_ready(process: ServiceProcess) -> bool:
    return process.log_path.exists() and WORKER_READY_MARK in process.log_path.read_bytes()


@contextmanager
def running_worker(
    env: Mapping[str, str],
    log_path: Path | None = None,
    *,
    command: Sequence[str] | None = None,
    cwd: Path = ROOT,
    wait_ready: bool = True,
    start_timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> Iterator[ServiceProcess]:
    """A Celery worker configured by ``env``; with ``wait_ready`` it consumes when this yields (it
    must log at INFO, the default ERP_LOG_LEVEL). Warm-stopped afterwards: the running task ends."""
    with running_process(
        "worker",
        command or worker_command(),
        env,
        log_path=log_path,
        cwd=cwd,
        ready=_worker_ready if wait_ready else None,
        start_timeout=start_timeout,
        stop_timeout=stop_timeout,
    ) as process:
        yield process
