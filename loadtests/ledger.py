"""The ledger of acknowledged writes of a scale-out run, and its audit against PostgreSQL.

A writer thread creates charges, posts measurements and starts analyses through the balancer,
beside the Locust users, and records every write the service acknowledged: the id in each 201
(charges, measurements) and in each 202 (analyses). A request that failed is not acknowledged, so
its loss is allowed. After the run, ``audit`` looks every acknowledged id up in the database and
waits (bounded) for every accepted analysis to reach a final state.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from erp_api.http import API_PREFIX

FINAL = ("succeeded", "failed")
MEASURABLE = ("in_production", "quarantined")


@dataclass(frozen=True)
class Outcome:
    """One write the writer attempted: when it was sent, how long it took, whether it was acknowledged."""

    kind: str
    sent_at: float
    seconds: float
    acknowledged: bool
    detail: str = ""


@dataclass
class Ledger:
    charges: list[int] = field(default_factory=list)
    measurements: list[int] = field(default_factory=list)
    analyses: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def failures(self, start: float = 0.0, end: float = float("inf")) -> list[Outcome]:
        """The writes not acknowledged whose answer (or error) came between ``start`` and ``end``."""
        return [o for o in self.outcomes if not o.acknowledged and start <= o.sent_at + o.seconds < end]


class AcknowledgedWriter:
    """A thread that writes through ``base_url`` until stopped, recording each acknowledgement."""

    def __init__(self, base_url: str, api_key: str, run_id: str, *, pause_seconds: float = 0.05) -> None:
        self.ledger = Ledger()
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._run_id = run_id
        self._pause = pause_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acknowledged-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Ledger:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.ledger

    def _run(self) -> None:
        with httpx.Client(base_url=self._base_url, headers=self._headers, timeout=30) as http:
            charges, parameters = _demo_data(http)
            measurable = [
                c for c in charges if c["status"] in MEASURABLE and parameters.get(c["product_sku"])
            ]
            template = charges[0]
            for n in itertools.count(1):
                if self._stop.is_set():
                    return
                self._write(
                    http, "charge", "/charges", _new_charge(template, self._run_id, n), self.ledger.charges
                )
                charge = random.choice(measurable)
                measurement = {"parameter": random.choice(parameters[charge["product_sku"]]), "value": 50.0}
                path = f"/charges/{charge['id']}/measurements"
                self._write(http, "measurement", path, measurement, self.ledger.measurements)
                if n % 3 == 0:
                    path = f"/charges/{random.choice(measurable)['id']}/analyses"
                    self._write(http, "analysis", path, {"rules": "nelson"}, self.ledger.analyses)
                self._stop.wait(self._pause)

    def _write(self, http: httpx.Client, kind: str, path: str, body: dict[str, Any], ids: list[int]) -> None:
        sent = time.time()
        started = time.perf_counter()
        try:
            response = http.post(f"{API_PREFIX}{path}", json=body)
        except httpx.HTTPError as exc:
            self.ledger.outcomes.append(Outcome(kind, sent, time.perf_counter() - started, False, repr(exc)))
            return
        seconds = time.perf_counter() - started
        if response.status_code in (201, 202):
            ids.append(int(response.json()["id"]))
            self.ledger.outcomes.append(Outcome(kind, sent, seconds, True))
        else:
            detail = f"{response.status_code} {response.text[:200]}"
            self.ledger.outcomes.append(Outcome(kind, sent, seconds, False, detail))


def _demo_data(http: httpx.Client) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    charges = http.get(f"{API_PREFIX}/charges", params={"limit": 500}).raise_for_status().json()["items"]
    parameters: dict[str, list[str]] = {}
    specs = http.get(f"{API_PREFIX}/quality/specs", params={"limit": 500}).raise_for_status().json()["items"]
    for spec in specs:
        parameters.setdefault(spec["product_sku"], []).append(spec["parameter"])
    return charges, parameters


def _new_charge(template: dict[str, Any], run_id: str, n: int) -> dict[str, Any]:
    return {
        "charge_number": f"SO-{run_id}-{n:06d}".upper(),
        "product_sku": template["product_sku"],
        "quantity": "100",
        "unit": template["unit"],
        "line": template["line"],
        "produced_at": "2026-03-01T06:00:00Z",
    }


@dataclass(frozen=True)
class Audit:
    """What the database holds of what was acknowledged.

    Analyses are counted over the whole table: the Locust users start analyses too, and the one the
    killed worker was running may be one of theirs; every analysis there must end final.
    """

    charges_found: int
    measurements_found: int
    analyses_found: int
    """Of the analyses the writer was told were accepted."""
    analyses_by_status: dict[str, int]
    """All analyses in the database."""
    analyses_retried: int
    """Analyses that took more than one attempt (a lost run taken back by the reaper)."""
    analysis_wait_seconds: float


def audit(ledger: Ledger, dsn: str, *, analysis_wait_seconds: float) -> Audit:
    """Count the acknowledged ids present in the database at ``dsn`` (asyncpg form); wait up to
    ``analysis_wait_seconds`` for every analysis in it to reach a final state."""
    return asyncio.run(_audit(ledger, dsn, analysis_wait_seconds))


async def _audit(ledger: Ledger, dsn: str, wait_seconds: float) -> Audit:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        charges = await _count(conn, "charges", ledger.charges)
        measurements = await _count(conn, "measurements", ledger.measurements)
        analyses = await _count(conn, "anomaly_analyses", ledger.analyses)
        start = time.monotonic()
        next_report = start + 10.0
        while True:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM anomaly_analyses GROUP BY status")
            by_status = {str(row["status"]): int(row["n"]) for row in rows}
            waited = time.monotonic() - start
            final = sum(n for status, n in by_status.items() if status in FINAL)
            total = sum(by_status.values())
            if final == total or waited >= wait_seconds:
                retried = await conn.fetchval("SELECT count(*) FROM anomaly_analyses WHERE attempts > 1")
                return Audit(charges, measurements, analyses, by_status, int(retried), waited)
            if time.monotonic() >= next_report:
                next_report += 10.0
                print(f"waiting for analyses: {final}/{total} final after {waited:.0f} s", flush=True)
            await asyncio.sleep(2.0)
    finally:
        await conn.close()


async def _count(conn: Any, table: str, ids: Sequence[int]) -> int:
    found = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE id = ANY($1::bigint[])", list(ids))
    return int(found)
