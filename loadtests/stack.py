"""Start the whole service for a load run: migrate, seed, API server and a Celery worker.

``default`` is the embedded stack (SQLite, memory cache, SQLite broker) in ``var/loadtest/``;
``postgres-redis`` uses the local PostgreSQL (database ``erp_loadtest``, made anew) and Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "loadtest"
POSTGRES_ADMIN = os.environ.get("ERP_LOAD_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("ERP_LOAD_REDIS_URL", "redis://127.0.0.1:6379")
LOAD_DATABASE = "erp_loadtest"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _fresh_postgres_database(name: str) -> str:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://{urlsplit(POSTGRES_ADMIN).netloc}/{name}"


class Stack:
    """Context manager owning the processes of one load run."""

    def __init__(self, kind: str, admin_key: str) -> None:
        self.kind = kind
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_path = ROOT / "reports" / f"stack-{kind}.log"

    def environment(self) -> dict[str, str]:
        # Every run starts from the demo data alone, so runs are comparable (earlier runs add rows).
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "ERP_HOST": "127.0.0.1",
            "ERP_PORT": str(self.port),
            "ERP_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            # The load generator is one client; per-key limits would measure the limiter, not the service.
            "ERP_RATE_LIMIT_ENABLED": "false",
        }
        if self.kind == "postgres-redis":
            env.update(
                ERP_DATABASE_URL=_fresh_postgres_database(LOAD_DATABASE),
                ERP_CACHE_BACKEND="redis",
                ERP_REDIS_URL=f"{REDIS}/0",
                ERP_CACHE_PREFIX=f"erp-loadtest-{os.getpid()}",
                ERP_BROKER_URL=f"{REDIS}/1",
            )
        else:
            env.update(
                ERP_DATABASE_URL=f"sqlite+aiosqlite:///{DATA}/erp.sqlite3",
                ERP_CACHE_BACKEND="memory",
                ERP_BROKER_URL=f"sqla+sqlite:///{DATA}/broker.sqlite3",
            )
        return env

    def __enter__(self) -> Stack:
        env = self.environment()
        self.log_path.parent.mkdir(exist_ok=True)
        # The service's JSON logs go to a file next to the reports, not into the run's summary.
        log = self.log_path.open("wb")
        for command in ("migrate", "seed"):
            subprocess.run(
                [sys.executable, "-m", "erp_api", command], env=env, cwd=ROOT, check=True, timeout=600
            )
        server = [sys.executable, "-m", "erp_api", "serve"]
        self.processes.append(
            subprocess.Popen(server, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        )
        if (ROOT / "tasks" / "celery_app.py").exists():
            worker = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks.celery_app",
                "worker",
                "--loglevel=WARNING",
            ]
            self.processes.append(
                subprocess.Popen(
                    [*worker, "--concurrency=1"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                )
            )
        log.close()
        self._wait_until_serving()
        return self

    def _wait_until_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise RuntimeError("the API server exited during start-up")
            try:
                httpx.get(f"{self.base_url}/openapi.json", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(f"the API did not answer on {self.base_url} within {timeout} s")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
