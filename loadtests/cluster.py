"""The processes of a scale-out run: API instances, Celery workers and beat, and HAProxy before them.

Every process runs in a process group of its own (``testing/processes.py``), so one can be SIGKILLed
with its children as a lost machine would be; they start in parallel and are all stopped on exit.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.balancer import running_balancer
from loadtests.stack import REDIS
from testing.processes import (
    Server,
    ServiceProcess,
    running_process,
    running_server,
    running_worker,
    serve_command,
    tasks_worker_command,
)

_ANALYSIS_TASK = re.compile(r"erp\.analysis\.run\[([0-9a-f-]+)\] (\w+)")


@dataclass(frozen=True)
class Cluster:
    base_url: str
    """The balancer's address."""
    servers: list[ServiceProcess]
    workers: list[ServiceProcess]


def redis_environment(run_id: str, cache_db: int, broker_db: int) -> dict[str, str]:
    """Cache, rate limits and broker on Redis databases of the run's choosing, under its own prefixes."""
    return {
        "ERP_CACHE_BACKEND": "redis",
        "ERP_REDIS_URL": f"{REDIS}/{cache_db}",
        "ERP_CACHE_PREFIX": f"erp-scaleout-{run_id}",
        "ERP_RATE_LIMIT_PREFIX": f"erp-scaleout-{run_id}:ratelimit",
        "ERP_BROKER_URL": f"{REDIS}/{broker_db}",
        "ERP_BROKER_KEY_PREFIX": f"erp-scaleout-{run_id}:",
    }


def delete_redis_keys(run_id: str, databases: Sequence[int]) -> None:
    """Delete every key the run left under its prefixes."""
    import redis

    for db in databases:
        client = redis.Redis.from_url(f"{REDIS}/{db}", socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=f"erp-scaleout-{run_id}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()


def analysis_environment() -> dict[str, str]:
    # Each analysis run takes half a second more (the test-only delay): with the writer's analyses
    # (about four a second on two single-process workers) a worker is then nearly always running one
    # when the kill comes, and the accepted analyses are all final soon after the run. Taking the
    # killed worker's back is the product's own business: the surviving worker's recovery loop
    # requeues an analysis whose heartbeat stopped (ERP_ANALYSIS_HEARTBEAT_*, defaults: within 90 s).
    return {"ERP_ANALYSIS_TASK_DELAY_SECONDS": "0.5"}


def runs_an_analysis(worker_log: str) -> bool:
    """Whether a worker's log shows an analysis task received and not finished yet (held by the worker:
    running, or about to be claimed by its pool process)."""
    last: dict[str, str] = {}
    for task_id, word in _ANALYSIS_TASK.findall(worker_log):
        last[task_id] = word
    return "received" in last.values()


def _enter_together(stack: ExitStack, managers: Sequence[AbstractContextManager[Any]]) -> list[Any]:
    """Enter ``managers`` in parallel; every one that was entered is exited by ``stack``."""
    with ThreadPoolExecutor(max_workers=len(managers)) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
    values, errors = [], []
    for manager, future in zip(managers, futures, strict=True):
        error = future.exception()
        if error is None:
            stack.push(manager.__exit__)
            values.append(future.result())
        else:
            errors.append(error)
    if errors:
        raise errors[0]
    return values


@contextmanager
def running_cluster(env: Mapping[str, str], logs: Path, *, instances: int, workers: int) -> Iterator[Cluster]:
    """``instances`` API servers (``python -m erp_api serve``), ``workers`` Celery workers with one pool
    process each, beat, and HAProxy before the servers; logs in ``logs``."""
    managers: list[AbstractContextManager[Any]] = [
        running_server(env, command=serve_command(), log_path=logs / f"api-{n}.log")
        for n in range(1, instances + 1)
    ]
    managers += [
        running_worker(
            env, logs / f"worker-{n}.log", command=[*tasks_worker_command(), "-n", f"scaleout-{n}@%h"]
        )
        for n in range(1, workers + 1)
    ]
    beat = [sys.executable, "-m", "tasks", "beat"]
    managers.append(running_process("beat", beat, env, log_path=logs / "beat.log"))
    with ExitStack() as stack:
        started = _enter_together(stack, managers)
        servers: list[Server] = started[:instances]
        balancer = stack.enter_context(
            running_balancer([s.port for s in servers], logs / "haproxy.cfg", logs / "haproxy.log")
        )
        yield Cluster(
            balancer.base_url, [s.process for s in servers], started[instances : instances + workers]
        )
