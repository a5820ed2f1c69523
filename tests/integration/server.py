"""Start the service as a real process on a free port, for tests that talk HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(base_url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(f"{base_url}/openapi.json", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"server at {base_url} did not answer within {timeout} s")


@contextmanager
def running_server(
    env: Mapping[str, str], command: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Yield (base URL, process) of a server started with ``env``; SIGTERM and reap it afterwards."""
    port = free_port()
    full_env = {**os.environ, **env, "ERP_HOST": "127.0.0.1", "ERP_PORT": str(port)}
    process = subprocess.Popen(
        command or [sys.executable, "-m", "erp_api", "serve"], cwd=ROOT, env=full_env, stderr=subprocess.PIPE
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
