"""``make run``'s supervisor: Ctrl-C stops every child; one child dying stops the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.processes import ROOT

pytestmark = pytest.mark.slow

# A stand-in for the API, worker and beat: records its pid, then waits for SIGTERM (or exits with CODE).
CHILD = """
import os, signal, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if sys.argv[2] != "forever":
    time.sleep(float(sys.argv[2])); sys.exit(3)
while True: time.sleep(0.05)
"""


def start_supervisor(tmp_path: Path, lifetimes: list[str]) -> subprocess.Popen[bytes]:
    commands = {
        f"child{i}": [sys.executable, "-c", CHILD, str(tmp_path / f"child{i}.pid"), life]
        for i, life in enumerate(lifetimes)
    }
    program = f"import sys; from tasks.supervisor import Supervisor; sys.exit(Supervisor({commands!r}).run())"
    return subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stderr=subprocess.PIPE)


def child_pids(tmp_path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    paths = [tmp_path / f"child{i}.pid" for i in range(count)]
    while time.monotonic() < deadline:
        if all(path.exists() and path.read_text() for path in paths):
            return [int(path.read_text()) for path in paths]
        time.sleep(0.05)
    raise TimeoutError("children did not start")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_every_child_and_waits_for_them(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, ["forever", "forever", "forever"])
    pids = child_pids(tmp_path, 3)
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in pids)


def test_a_child_that_exits_stops_the_others(tmp_path: Path) -> None:
    supervisor = start_supervisor(tmp_path, ["forever", "0.5", "forever"])
    pids = child_pids(tmp_path, 3)
    assert supervisor.wait(timeout=20) == 3
    assert not any(alive(pid) for pid in pids)
    assert supervisor.stderr is not None
    assert b"child1 exited with 3; stopping the others" in supervisor.stderr.read()


def test_the_ready_block_is_printed_once_after_the_api_answers(tmp_path: Path) -> None:
    key_file = tmp_path / "admin-key"
    key_file.write_text("erp_local_admin_key\n")
    # "ready" once the first child has started; the block names the URL, the docs, the key and Ctrl-C.
    program = (
        "import sys; from pathlib import Path; "
        "from tasks.supervisor import Supervisor, ready_block; "
        f"pid_file = Path({str(tmp_path / 'child0.pid')!r}); "
        f"commands = {{'child0': [sys.executable, '-c', {CHILD!r}, str(pid_file), 'forever']}}; "
        "sys.exit(Supervisor(commands, ready=pid_file.exists, "
        f"announce=lambda: print(ready_block('http://127.0.0.1:8000', Path({str(key_file)!r})), flush=True)).run())"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child_pids(tmp_path, 1)
    time.sleep(1)
    supervisor.send_signal(signal.SIGINT)
    assert supervisor.wait(timeout=20) == 0
    assert supervisor.stdout is not None
    out = supervisor.stdout.read().decode()
    assert out.count("erp-api is ready") == 1
    for line in (
        "http://127.0.0.1:8000/api/v1",
        "http://127.0.0.1:8000/docs",
        f"erp_local_admin_key   (kept in {key_file})",
        "Ctrl-C",
    ):
        assert line in out


def test_the_ready_block_says_how_to_get_a_key_when_there_is_none(tmp_path: Path) -> None:
    from tasks.supervisor import ready_block

    assert "run `erp-api keys local-admin`" in ready_block("http://127.0.0.1:8000", tmp_path / "absent")
