"""Start ``tests.cache.process_worker`` processes and judge what their reads returned.

A read is judged against the writes: ``stale_reads`` finds reads that returned a value older than one
committed at least ``bound`` seconds before the read started (the cache had that long to stop serving
it); ``coherence_lags`` measures, per write, how long after its invalidation completed reads still
started that returned an older value.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 120.0


async def start_worker(role: str, config: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.cache.process_worker",
        role,
        json.dumps(config),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def results(*processes: asyncio.subprocess.Process) -> list[dict[str, Any]]:
    """Each worker's printed result; fails if one did not exit cleanly (killed after the hang guard)."""
    outputs = []
    try:
        async with asyncio.timeout(HANG_GUARD):
            outputs = [await process.communicate() for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()[-8000:]
    return [json.loads(stdout) for stdout, _ in outputs]


def reads_of(reader: dict[str, Any]) -> list[tuple[float, int]]:
    return sorted(zip(reader["starts"], reader["values"], strict=True))


def stale_reads(
    reader: dict[str, Any], writes: list[list[Any]], *, bound: float, excluded: tuple[float, float]
) -> list[tuple[float, int, int]]:
    """``(started, returned, required)`` for reads outside ``excluded`` that returned a value older
    than the newest one committed ``bound`` seconds before they started."""
    commits = [committed for _, committed, _, _ in writes]
    values = [value for value, _, _, _ in writes]
    stale = []
    for started, value in reads_of(reader):
        if excluded[0] <= started <= excluded[1]:
            continue
        newest = bisect.bisect_right(commits, started - bound)
        required = values[newest - 1] if newest else 0
        if value < required:
            stale.append((started, value, required))
    return stale


def coherence_lags(reader: dict[str, Any], writes: list[list[Any]]) -> list[float]:
    """Per write: seconds from its invalidation completing to the start of the last read that still
    returned an older value (0.0 if none did)."""
    latest_start_below: dict[int, float] = {}  # value -> latest start of a read returning it
    for started, value in reads_of(reader):
        latest_start_below[value] = max(started, latest_start_below.get(value, started))
    lags = []
    running = float("-inf")  # latest start of a read that returned any value below the current one
    previous = 0
    for value, _, invalidated, ok in sorted(writes):
        for older in range(previous, value):
            running = max(running, latest_start_below.get(older, float("-inf")))
        previous = value
        if ok:
            lags.append(max(0.0, running - invalidated))
    return lags


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0
