"""Start the whole service for a load run: migrate, seed, API server and a Celery worker.

``default`` is the embedded stack (SQLite, memory cache, SQLite broker) in ``var/loadtest/``;
``postgres-redis`` uses the local PostgreSQL (database ``erp_loadtest``, made anew) and Redis.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from testing.processes import running_server, running_worker, serve_command, worker_command

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "loadtest"
POSTGRES_ADMIN = os.environ.get("ERP_LOAD_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("ERP_LOAD_REDIS_URL", "redis://127.0.0.1:6379")
LOAD_DATABASE = "erp_loadtest"


def fresh_postgres_database(name: str) -> str:
    """Drop and create database ``name`` on the local PostgreSQL; returns its SQLAlchemy URL."""
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return f"postgresql+asyncpg://{urlsplit(POSTGRES_ADMIN).netloc}/{name}"


def drop_postgres_database(name: str) -> None:
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_admin(*statements: str) -> None:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def execute() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute())


def prepare_database(env: Mapping[str, str]) -> None:
    """Migrate the database ``env`` names and seed the demo data into it."""
    for command in ("migrate", "seed"):
        subprocess.run(
            [sys.executable, "-m", "erp_api", command],
            env={**os.environ, **env},
            cwd=ROOT,
            check=True,
            timeout=600,
        )


class Stack:
    """Context manager owning the processes of one load run."""

    def __init__(self, kind: str, admin_key: str, log_path: Path | None = None) -> None:
        self.kind = kind
        self.admin_key = admin_key
        self.base_url = ""
        self.log_path = log_path or ROOT / "reports" / f"stack-{kind}.log"
        self._processes = ExitStack()

    def environment(self) -> dict[str, str]:
        # Every run starts from the demo data alone, so runs are comparable (earlier runs add rows).
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True, exist_ok=True)
        # As shipped: authentication and the rate limiter on; Locust sends this admin key, whose limit
        # (ERP_RATE_LIMIT_ADMIN) is above what a host serves.
        env = {"ERP_BOOTSTRAP_ADMIN_KEY": self.admin_key}
        if self.kind == "postgres-redis":
            env.update(
                ERP_DATABASE_URL=fresh_postgres_database(LOAD_DATABASE),
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
        self.log_path.write_bytes(b"")
        prepare_database(env)
        with self._processes as processes:
            server = processes.enter_context(
                running_server(env, command=serve_command(), log_path=self.log_path)
            )
            self.base_url = server.base_url
            if (ROOT / "tasks" / "celery_app.py").exists():
                worker = [*worker_command(), "--loglevel=WARNING"]
                processes.enter_context(running_worker(env, self.log_path, command=worker, wait_ready=False))
            self._processes = processes.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._processes.close()
