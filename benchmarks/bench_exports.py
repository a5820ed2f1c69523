"""Streamed exports on PostgreSQL: the server's memory while it exports 1,000,000 measurements, and
how soon the first byte arrives.

A private database gets ROWS measurements of one product and parameter, loaded with COPY. One
uvicorn process serves it as shipped (keys on, gzip middleware on, ERP_EXPORT_CHUNK_ROWS default).
The server's resident set (VmRSS of /proc/<pid>/status) is sampled every 10 ms while a client reads
the whole CSV (and then the whole NDJSON) export over HTTP; the growth is the peak during an export
minus the resident set right before it, after a warm-up export of 50,000 rows. The first byte is
timed from sending the request to receiving the first body byte (the CSV header row), FIRST_BYTE_TRIES
times, each request dropped after its first byte.

``python -m benchmarks.bench_exports [--rows N]``: a smaller N for a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.common import POSTGRES_ADMIN, machine, postgres_database, reachable, write_result
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.http import API_PREFIX
from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server

TOPIC = "exports"
TITLE = "Streamed exports (PostgreSQL)"
ROWS = 1_000_000
CHARGES = 100
PRODUCT, PARAMETER = "PUMP-A", "diameter_mm"
WARM_UP_ROWS = 50_000
FIRST_BYTE_TRIES = 20
SAMPLE_SECONDS = 0.01
RSS_BUDGET_MB = 50.0
FIRST_BYTE_BUDGET_MS = 200.0
ADMIN_KEY = "erp_bench-exports-admin-key-0123456789abcdefghijklmnop"
COLUMNS = ("charge_id", "product_sku", "parameter", "value", "measured_at", "created_at")
START = datetime(2026, 1, 1, tzinfo=UTC)


def _driver_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _seed(url: str, rows: int) -> None:
    """CHARGES charges of one product, then ``rows`` measurements of one parameter, copied in as a
    restore would: indexes dropped and rebuilt, no per-row foreign-key trigger."""
    engine = create_engine(load_settings(database_url=url))
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            charges = await ChargeRepository(session).insert_many(
                [
                    {
                        "charge_number": f"CH-2026-{serial:06d}",
                        "product_sku": PRODUCT,
                        "quantity": Decimal(1000),
                        "unit": "pcs",
                        "line": "Linie Süd",
                        "status": "in_production",
                        "produced_at": START + timedelta(hours=serial),
                    }
                    for serial in range(CHARGES)
                ]
            )
        charge_ids = [charge.id for charge in charges]
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(_driver_url(url), timeout=10)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'measurements' AND indexname LIKE 'ix_%'"
        )
        rng = random.Random(5)
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            for start in range(0, rows, 100_000):
                records = []
                for i in range(start, min(rows, start + 100_000)):
                    at = START + timedelta(seconds=i)
                    records.append(
                        (charge_ids[i % CHARGES], PRODUCT, PARAMETER, rng.gauss(80.0, 0.05), at, at)
                    )
                await conn.copy_records_to_table("measurements", records=records, columns=COLUMNS)
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE measurements")
    finally:
        await conn.close()


class RssSampler:
    """The resident set of process ``pid``, sampled every SAMPLE_SECONDS in a thread."""

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_kb(self) -> int:
        for line in self._status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.rss_kb())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self.peak_kb = self.rss_kb()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class ExportRun:
    name: str
    rows: int
    megabytes: float
    seconds: float
    first_byte_ms: float
    rss_before_mb: float
    rss_peak_mb: float

    @property
    def growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb


def _export(client: httpx.Client, pid: int, name: str, path: str, encoding: str) -> ExportRun:
    sampler = RssSampler(pid)
    before = sampler.rss_kb()
    params = {"product_sku": PRODUCT, "parameter": PARAMETER}
    with sampler:
        started = time.perf_counter()
        first_byte = 0.0
        size = 0
        with client.stream("GET", path, params=params, headers={"Accept-Encoding": encoding}) as response:
            response.raise_for_status()
            for chunk in response.iter_raw():
                if not first_byte:
                    first_byte = time.perf_counter() - started
                size += len(chunk)  # as sent (compressed with gzip); rows: the server's log
        elapsed = time.perf_counter() - started
    return ExportRun(name, 0, size / 2**20, elapsed, first_byte * 1000, before / 1024, sampler.peak_kb / 1024)


def _first_byte_ms(client: httpx.Client, path: str) -> list[float]:
    timings = []
    params = {"product_sku": PRODUCT, "parameter": PARAMETER}
    for _ in range(FIRST_BYTE_TRIES):
        started = time.perf_counter()
        with client.stream("GET", path, params=params, headers={"Accept-Encoding": "identity"}) as response:
            next(response.iter_raw())
            timings.append((time.perf_counter() - started) * 1000)
        # Until the dropped export has stopped: the next request meets an idle server.
        time.sleep(0.5)
    return timings


def _rows_of_last_export(log: str) -> int:
    """The rows the server says its last export sent (its ``export_ended`` log line)."""
    ended = [
        event
        for line in log.splitlines()
        if line.startswith("{") and (event := orjson.loads(line)).get("event") == "export_ended"
    ]
    if not ended or ended[-1]["outcome"] != "complete":
        raise RuntimeError(f"the last export did not complete: {ended[-1:]}")
    return int(ended[-1]["rows"])


def measure(rows: int) -> dict[str, Any]:
    with postgres_database("erp_bench_exports") as url:
        upgrade(load_settings(database_url=url))
        began = time.perf_counter()
        asyncio.run(_seed(url, rows))
        loaded = time.perf_counter() - began
        env = {
            "ERP_DATABASE_URL": url,
            "ERP_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "ERP_AUTH_ENABLED": "true",
            "ERP_ACCESS_LOG": "false",
            "ERP_BROKER_URL": f"sqla+sqlite:///{Path(os.environ.get('TMPDIR', '/tmp'))}/erp-bench-exports-broker.sqlite3",
        }
        with (
            running_server(env) as server,
            httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
            ) as client,
        ):
            pid = server.process.pid
            csv_path, ndjson_path = (
                f"{API_PREFIX}/exports/measurements.csv",
                f"{API_PREFIX}/exports/measurements.ndjson",
            )
            # Warm-up: imports, connection pool, allocator arenas of one chunk.
            warm = client.get(
                csv_path,
                params={
                    "product_sku": PRODUCT,
                    "parameter": PARAMETER,
                    "measured_to": (START + timedelta(seconds=WARM_UP_ROWS)).isoformat(),
                },
            )
            warm.raise_for_status()
            first_bytes = _first_byte_ms(client, csv_path)
            runs = []
            for name, path, encoding in (
                ("CSV", csv_path, "identity"),
                ("NDJSON", ndjson_path, "identity"),
                ("CSV, gzip", csv_path, "gzip"),
            ):
                run = _export(client, pid, name, path, encoding)
                time.sleep(0.3)  # the server logs the export's end after the last byte
                run.rows = _rows_of_last_export(server.process.log())
                runs.append(run)
    return {"rows": rows, "loaded_seconds": loaded, "first_bytes": first_bytes, "runs": runs}


def report(measured: dict[str, Any], load_before: float) -> dict[str, Any]:
    runs: list[ExportRun] = measured["runs"]
    first = sorted(measured["first_bytes"])
    p50, p95 = statistics.median(first), first[max(0, round(0.95 * len(first)) - 1)]
    worst_growth = max(run.growth_mb for run in runs)
    return {
        "title": TITLE,
        "tables": [
            {
                "caption": f"Exporting {measured['rows']:,} measurements of one product and parameter over HTTP",
                "columns": [
                    "export",
                    "rows",
                    "MB sent",
                    "seconds",
                    "rows/s",
                    "first byte ms",
                    "RSS before MB",
                    "RSS peak MB",
                    "growth MB",
                ],
                "rows": [
                    [
                        run.name,
                        f"{run.rows:,}",
                        f"{run.megabytes:,.1f}",
                        f"{run.seconds:.1f}",
                        f"{run.rows / run.seconds:,.0f}",
                        f"{run.first_byte_ms:.1f}",
                        f"{run.rss_before_mb:.1f}",
                        f"{run.rss_peak_mb:.1f}",
                        f"{run.growth_mb:.1f}",
                    ]
                    for run in runs
                ],
            },
            {
                "caption": "Budgets",
                "columns": ["measure", "measured", "budget", "met"],
                "rows": [
                    [
                        "server RSS growth during an export",
                        f"{worst_growth:.1f} MB",
                        f"< {RSS_BUDGET_MB:.0f} MB",
                        "yes" if worst_growth < RSS_BUDGET_MB else "NO",
                    ],
                    [
                        f"first byte, p50 / p95 of {len(first)}",
                        f"{p50:.1f} / {p95:.1f} ms",
                        f"<= {FIRST_BYTE_BUDGET_MS:.0f} ms",
                        "yes" if p95 <= FIRST_BYTE_BUDGET_MS else "NO",
                    ],
                ],
            },
        ],
        "notes": [
            f"machine: {machine()}; load average before: {load_before:.2f}",
            f"{measured['rows']:,} measurements loaded with COPY in {measured['loaded_seconds']:.1f} s.",
            "RSS is sampled every 10 ms from /proc/<pid>/status (VmRSS) of the single uvicorn process; "
            f"growth = peak during the export - RSS right before it, after a {WARM_UP_ROWS:,}-row warm-up export.",
            "Exports are read in keyset chunks (ERP_EXPORT_CHUNK_ROWS, default 5,000), one query each, "
            "each chunk sent before the next is read; the client reads as fast as it can.",
            "First byte: from sending the request to the first body byte (the CSV header row, sent before "
            "the first query), identity encoding, each request dropped after its first byte.",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS, help="measurements to export (default 1,000,000)")
    rows = parser.parse_args().rows
    if not reachable(POSTGRES_ADMIN, 5432):
        write_result(
            TOPIC,
            {
                "title": TITLE,
                "tables": [],
                "notes": [f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: nothing was measured"],
            },
        )
        return
    load_before = os.getloadavg()[0]
    result = report(measure(rows), load_before)
    write_result(TOPIC, result)
    for table in result["tables"]:
        print(table["caption"])
        for row in table["rows"]:
            print("  ", " | ".join(str(cell) for cell in row))


if __name__ == "__main__":
    main()
