"""The product as shipped, for the HTTP benchmarks: ``python -m erp_api serve`` with its defaults.

Authentication, the rate limiter (in memory, or on Redis with the Redis cache), metrics and the
access log stay on, and wrk sends a real admin API key (``ERP_BOOTSTRAP_ADMIN_KEY``) as
``Authorization: Bearer``; the admin's limit (``ERP_RATE_LIMIT_ADMIN``) is above what a host serves.
The server's stdout, its JSON logs with one access line per request, goes to a file, as a
deployment ships its logs. ``shipped_server`` checks on start that the server really runs that way.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from erp_api.http import API_PREFIX
from testing.processes import Server, running_server, serve_command

PROBE = f"{API_PREFIX}/charges?limit=1"


def new_admin_key() -> str:
    return secrets.token_urlsafe(32)


def auth_headers(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


def check_as_shipped(base_url: str, admin_key: str) -> None:
    """Refuse to measure a server whose authentication or rate limiter is off."""
    anonymous = httpx.get(f"{base_url}{PROBE}", timeout=10)
    if anonymous.status_code != 401:
        raise SystemExit(f"not as shipped: a request without a key got {anonymous.status_code}, not 401")
    admin = httpx.get(f"{base_url}{PROBE}", headers=auth_headers(admin_key), timeout=10)
    admin.raise_for_status()
    if "ratelimit-limit" not in admin.headers:
        raise SystemExit("not as shipped: the admin's response carries no RateLimit headers")


@contextmanager
def shipped_server(
    env: Mapping[str, str], admin_key: str, log_path: Path, workers: int = 1
) -> Iterator[Server]:
    """``python -m erp_api serve`` with ``workers`` processes, configured by ``env`` over the defaults,
    logging to ``log_path``; several workers get a metrics directory of their own."""
    server_env = {**env, "ERP_BOOTSTRAP_ADMIN_KEY": admin_key, "ERP_WORKERS": str(workers)}
    with ExitStack() as stack:
        if workers > 1:
            server_env["PROMETHEUS_MULTIPROC_DIR"] = stack.enter_context(tempfile.TemporaryDirectory())
        server = stack.enter_context(running_server(server_env, command=serve_command(), log_path=log_path))
        check_as_shipped(server.base_url, admin_key)
        yield server
