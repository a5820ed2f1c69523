"""Run the API, a worker and beat as one unit (``make run``): start all, stop all.

Each child runs in its own session, so Ctrl-C reaches only this supervisor, which forwards SIGTERM
to every child and waits for them (warm shutdown: a worker finishes its running task). If one child
exits on its own, the others are stopped too: a half-running stack is worse than a stopped one.

Once the API answers ``/health/ready``, one block says where it is, which key to use and how to stop;
the worker and beat log warnings and errors only (unless ``ERP_LOG_LEVEL`` is set), so that the block
stays in view.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType

import httpx

from erp_api.security.cli import LOCAL_ADMIN_FILE
from erp_api.settings import Settings

STOP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.2

READY_PATH = "/health/ready"
READY_TIMEOUT_SECONDS = 0.5

COMMANDS: dict[str, list[str]] = {
    "api": [sys.executable, "-m", "erp_api", "serve"],
    "worker": [sys.executable, "-m", "tasks", "worker"],
    "beat": [sys.executable, "-m", "tasks", "beat"],
}
QUIET = {"worker", "beat"}
"""Children whose INFO lines (a task received, a job sent) would bury the ready block."""


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        ready: Callable[[], bool] | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        """``ready`` is polled until it returns True; then ``announce`` runs, once."""
        self._commands = commands
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._stop_requested = False
        self._ready = ready
        self._announce = announce

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for name, command in self._commands.items():
            # Fixed commands of this program, never user input.
            # WARNING unless ERP_LOG_LEVEL says otherwise.
            env = {"ERP_LOG_LEVEL": "WARNING", **os.environ} if name in QUIET else None
            self._children[name] = subprocess.Popen(command, start_new_session=True, env=env)  # noqa: S603
            print(f"started {name} (pid {self._children[name].pid})", file=sys.stderr)
        exit_code = 0
        announced = self._ready is None
        while not self._stop_requested:
            exited = [
                (name, child.returncode) for name, child in self._children.items() if child.poll() is not None
            ]
            if exited:
                name, exit_code = exited[0]
                print(f"{name} exited with {exit_code}; stopping the others", file=sys.stderr)
                exit_code = exit_code or 1
                break
            if not announced and self._ready is not None and self._ready():
                announced = True
                if self._announce is not None:
                    self._announce()
            time.sleep(POLL_SECONDS)
        self.stop_all(self._children.values())
        return exit_code

    @staticmethod
    def stop_all(children: Iterable[subprocess.Popen[bytes]]) -> None:
        running = [child for child in children if child.poll() is None]
        for child in running:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in running:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def api_answers(url: str) -> bool:
    """Whether the API at ``url`` says it is ready (its database, cache and broker answer)."""
    try:
        return httpx.get(url + READY_PATH, timeout=READY_TIMEOUT_SECONDS).status_code == 200
    except httpx.HTTPError:
        return False


def ready_block(url: str, key_file: Path) -> str:
    """What ``make run`` shows once the API answers: where it is, the key to use, how to stop."""
    key = key_file.read_text().strip() if key_file.exists() else ""
    key_line = (
        f"  admin key  {key}   (kept in {key_file})"
        if key
        else "  admin key  none yet: run `erp-api keys local-admin`"
    )
    rule = "-" * 72
    return "\n".join(
        [
            rule,
            "erp-api is ready",
            f"  API        {url}/api/v1",
            f"  docs       {url}/docs",
            key_line,
            "  stop       Ctrl-C (stops the API, the worker and beat)",
            rule,
        ]
    )


def run_all(settings: Settings) -> int:
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104
    url = f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"
    return Supervisor(
        COMMANDS,
        ready=lambda: api_answers(url),
        announce=lambda: print(ready_block(url, LOCAL_ADMIN_FILE), flush=True),
    ).run()
