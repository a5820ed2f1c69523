"""Run the API, a worker and beat as one unit (``make run``): start all, stop all.

Each child runs in its own session, so Ctrl-C reaches only this supervisor, which forwards SIGTERM
to every child and waits for them (warm shutdown: a worker finishes its running task). If one child
exits on its own, the others are stopped too: a half-running stack is worse than a stopped one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from types import FrameType

STOP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.2

COMMANDS: dict[str, list[str]] = {
    "api": [sys.executable, "-m", "erp_api", "serve"],
    "worker": [sys.executable, "-m", "tasks", "worker"],
    "beat": [sys.executable, "-m", "tasks", "beat"],
}


class Supervisor:
    def __init__(self, commands: dict[str, list[str]]) -> None:
        self._commands = commands
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._stop_requested = False

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for name, command in self._commands.items():
            # Fixed commands of this program, never user input.
            self._children[name] = subprocess.Popen(command, start_new_session=True)  # noqa: S603
            print(f"started {name} (pid {self._children[name].pid})", file=sys.stderr)
        exit_code = 0
        while not self._stop_requested:
            exited = [
                (name, child.returncode) for name, child in self._children.items() if child.poll() is not None
            ]
            if exited:
                name, exit_code = exited[0]
                print(f"{name} exited with {exit_code}; stopping the others", file=sys.stderr)
                exit_code = exit_code or 1
                break
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


def run_all() -> int:
    return Supervisor(COMMANDS).run()
