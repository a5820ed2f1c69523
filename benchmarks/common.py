"""What benchmarks share: result files, a private PostgreSQL database, the CLI, the machine.

Server and worker processes come from ``testing.processes`` (shared with the tests and load runs).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "bench"
POSTGRES_ADMIN = os.environ.get("ERP_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ERP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def write_result(topic: str, result: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{topic}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"wrote {path}")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database(prefix: str = "erp_bench") -> Iterator[str]:
    """A new PostgreSQL database (SQLAlchemy asyncpg URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{urlsplit(POSTGRES_ADMIN).netloc}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process has spent so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def run_cli(env: Mapping[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "erp_api", *args], cwd=ROOT, env={**os.environ, **env}, check=True)


def machine() -> dict[str, str]:
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }
