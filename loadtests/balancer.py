"""HAProxy in front of several API instances, configured anew for each run (``make scaleout``).

The configuration takes an instance out of rotation when ``GET /health/ready`` fails twice (checked
every second) or at its first refused connection, and retries a request that could not be delivered
on another instance: always when the connection failed (the request never left HAProxy), and for
idempotent requests also when the instance died while answering (an empty response, a 502/503/504).
A POST that reached an instance which then died is not retried: the client sees the error and
knows its write was not acknowledged.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from testing.processes import ServiceProcess, free_port, running_process

READY_PATH = "/health/ready"


def haproxy_config(port: int, backends: Sequence[int], *, check_interval_ms: int = 1000) -> str:
    """The HAProxy configuration: listen on 127.0.0.1:``port``, balance over the ``backends`` ports."""
    servers = "\n".join(
        f"    server api{index} 127.0.0.1:{backend}" for index, backend in enumerate(backends, 1)
    )
    return f"""\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 10s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

frontend api
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance leastconn
    option httpchk GET {READY_PATH}
    http-check expect status 200
    default-server check inter {check_interval_ms} fastinter 250 fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
{servers}
"""


def haproxy_binary() -> str:
    """The path of ``haproxy``; raises with how to install it when it is missing."""
    path = shutil.which("haproxy")
    if path is None:
        raise RuntimeError(
            "haproxy is not installed (Debian: apt-get install haproxy; make scaleout does it)"
        )
    return path


@dataclass(frozen=True)
class Balancer:
    base_url: str
    port: int
    process: ServiceProcess


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_balancer(backends: Sequence[int], config_path: Path, log_path: Path) -> Iterator[Balancer]:
    """HAProxy in the foreground in a process group of its own, serving once ``/health`` answers
    through it; its configuration is written to ``config_path``."""
    port = free_port()
    config_path.write_text(haproxy_config(port, backends))
    base_url = f"http://127.0.0.1:{port}"
    command = [haproxy_binary(), "-db", "-f", str(config_path)]
    with running_process(
        "haproxy", command, {}, log_path=log_path, ready=lambda _process: _answers(base_url), start_timeout=20
    ) as process:
        yield Balancer(base_url, port, process)
