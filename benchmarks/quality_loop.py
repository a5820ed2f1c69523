"""The quality loop on PostgreSQL: ingestion with the on-ingest rule check, alert latency, check cost.

Run by ``bench_quality`` (alone: ``python -m benchmarks.bench_quality loop [HISTORY_ROWS]``).

- Batch ingestion: batches of ``BATCH_ITEMS`` in-control points (Gaussian about the stored centre),
  their timestamps advancing from batch to batch, posted over ``BATCH_CONNECTIONS`` connections to
  the server as shipped. One series has stored control limits, so each of its points is rule-checked;
  the other has none (the checker finds no limits and records nothing). Rounds of the two alternate.
  A round's acknowledged rate counts its points up to its last 201; its checked rate counts them up
  to the moment the rule-check outbox is empty again, i.e. every check of the round has committed.
- Alert latency: a violating point (beyond 3 sigma) is posted alone; ``GET /quality/alerts`` is then
  polled until an alert names it. Latency is from the 201's arrival to the first answer showing it.
- Check cost against history: one new point of a series with ``HISTORY_SIZES`` prior points (copied
  in), then ``RuleChecker.check`` timed in-process; the databases are checked in turn, so drift of
  the machine hits both alike.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.common import RESULTS, machine, median, postgres_database, run_cli
from benchmarks.shipped import auth_headers, new_admin_key, shipped_server
from cache import CacheManager, build_backend
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.http import API_PREFIX
from erp_api.migrate import upgrade
from erp_api.quality.alerts.rule_checker import RuleChecker
from erp_api.quality.limits.schemas import LimitsBody
from erp_api.quality.limits.service import ControlLimitsService
from erp_api.quality.models import QualitySpec
from erp_api.quality.records import NewMeasurement
from erp_api.quality.writer import MeasurementWriter
from erp_api.settings import load_settings

TITLE = "Quality loop: on-ingest rules, alert latency, check cost (PostgreSQL)"
CENTER, SIGMA = 80.0, 0.025
CHECKED, UNCHECKED = "loop_checked_mm", "loop_unchecked_mm"
LATENCY_PARAMETER = "loop_latency_mm"
BATCH_ITEMS = 10_000
BATCH_CONNECTIONS = 2
BATCHES_PER_ROUND = 8
ROUNDS = 3
# Within a batch one point per millisecond: every round's points lie between an hour ago and now.
POINT_SPACING = timedelta(milliseconds=1)
DRAIN_TIMEOUT_SECONDS = 300.0
LATENCY_SAMPLES = 60
LATENCY_POLL_SECONDS = 0.005
LATENCY_TIMEOUT_SECONDS = 10.0
HISTORY_SIZES = (1_000, 1_000_000)
HISTORY_PRODUCT = "BENCH-LOOP"
HISTORY_PARAMETER = "diameter_mm"
CHECK_SAMPLES = 40
BUDGET_CHECKED_RATE = 40_000
# The same budget as a share of the rate without rules (52,000/s), which a busy machine slows alike.
BUDGET_CHECKED_SHARE = round(BUDGET_CHECKED_RATE / 52_000, 2)
BUDGET_LATENCY_P95_MS = 1_000
# "Flat in history length": the median at the long history within this factor of the short one's.
BUDGET_COST_RATIO = 1.25


def driver_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def ingest_target(url: str) -> tuple[int, str]:
    """A charge that takes the posted diameter_mm values (about 80 mm): a PUMP-HOUSING-A charge (whose
    spec has that parameter; others are refused) in production or quarantine (released ones are not)."""
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT id, product_sku FROM charges WHERE product_sku = 'PUMP-HOUSING-A' "
            "AND status IN ('in_production', 'quarantined') ORDER BY id LIMIT 1"
        )
    finally:
        await conn.close()
    if row is None:
        raise RuntimeError("the demo data has no PUMP-HOUSING-A charge in production or quarantine")
    return int(row["id"]), str(row["product_sku"])


def _new_series(http: httpx.Client, product: str, parameter: str, *, limits: bool) -> None:
    """A spec (all Nelson rules) for a series of its own, and its stored control limits if ``limits``."""
    spec = {"unit": "mm", "lsl": CENTER - 4 * SIGMA, "usl": CENTER + 4 * SIGMA, "target": CENTER}
    http.put(f"{API_PREFIX}/quality/specs/{product}/{parameter}", json=spec).raise_for_status()
    if limits:
        path = f"{API_PREFIX}/quality/specs/{product}/{parameter}/limits"
        http.put(path, json={"center": CENTER, "sigma": SIGMA}).raise_for_status()


async def _scalar(url: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _drained(url: str, within: float) -> float:
    """Wait until the rule-check outbox is empty (every claimed row's check committed); perf_counter then."""
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    deadline = time.perf_counter() + within
    try:
        while await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rule_checks)"):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the rule-check outbox was not drained within {within:.0f} s")
            await asyncio.sleep(0.002)
        return time.perf_counter()
    finally:
        await conn.close()


# Batch ingestion with and without the rule check ---------------------------------------------------------


def _bodies(parameter: str, start: datetime, rng: random.Random) -> list[bytes]:
    """One round's batches of one series, their points advancing from ``start``."""
    bodies = []
    for batch in range(BATCHES_PER_ROUND):
        first = start + batch * BATCH_ITEMS * POINT_SPACING
        items = [
            {
                "parameter": parameter,
                "value": round(rng.gauss(CENTER, SIGMA), 4),
                "measured_at": (first + i * POINT_SPACING).isoformat(),
            }
            for i in range(BATCH_ITEMS)
        ]
        bodies.append(orjson.dumps({"items": items}))
    return bodies


def _post_all(base_url: str, headers: dict[str, str], path: str, bodies: list[bytes]) -> list[float]:
    """POST every body over ``BATCH_CONNECTIONS`` keep-alive connections; each request's seconds."""
    chunks = [bodies[i::BATCH_CONNECTIONS] for i in range(BATCH_CONNECTIONS)]

    def post(chunk: list[bytes]) -> list[float]:
        timings = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
            for body in chunk:
                started = time.perf_counter()
                response = http.post(path, content=body, headers={"Content-Type": "application/json"})
                timings.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise RuntimeError(f"batch refused: {response.status_code} {response.text[:300]}")
        return timings

    with ThreadPoolExecutor(BATCH_CONNECTIONS) as pool:
        return [seconds for timings in pool.map(post, chunks) for seconds in timings]


def batch_ingest(
    base_url: str, headers: dict[str, str], url: str, charge_id: int, product: str
) -> dict[str, list[dict[str, float]]]:
    """Alternating rounds of the checked and the unchecked series; per series, one dict per round."""
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        _new_series(http, product, CHECKED, limits=True)
        _new_series(http, product, UNCHECKED, limits=False)
    path = f"{API_PREFIX}/charges/{charge_id}/measurements"
    rng = random.Random(5)
    round_span = BATCHES_PER_ROUND * BATCH_ITEMS * POINT_SPACING
    start = datetime.now(UTC) - ROUNDS * round_span - timedelta(minutes=1)
    rounds: dict[str, list[dict[str, float]]] = {CHECKED: [], UNCHECKED: []}
    # Warm-up, an hour before the rounds' points: connections, code paths, the series' first rollups.
    for parameter in (CHECKED, UNCHECKED):
        warm = _bodies(parameter, start - timedelta(hours=1), rng)[:BATCH_CONNECTIONS]
        _post_all(base_url, headers, path, warm)
    for index in range(ROUNDS):
        for parameter in (CHECKED, UNCHECKED) if index % 2 == 0 else (UNCHECKED, CHECKED):
            bodies = _bodies(parameter, start + index * round_span, rng)
            asyncio.run(_drained(url, DRAIN_TIMEOUT_SECONDS))
            alerts_before = asyncio.run(
                _scalar(url, "SELECT count(*) FROM quality_alerts WHERE parameter = $1", parameter)
            )
            began = time.perf_counter()
            timings = _post_all(base_url, headers, path, bodies)
            acknowledged = time.perf_counter() - began
            checked = asyncio.run(_drained(url, DRAIN_TIMEOUT_SECONDS)) - began
            alerts = asyncio.run(
                _scalar(url, "SELECT count(*) FROM quality_alerts WHERE parameter = $1", parameter)
            )
            points = len(bodies) * BATCH_ITEMS
            rounds[parameter].append(
                {
                    "acknowledged_per_s": points / acknowledged,
                    "checked_per_s": points / checked,
                    "drain_s": checked - acknowledged,
                    "p50_ms": median(timings) * 1000,
                    "alerts": alerts - alerts_before,
                }
            )
    return rounds


def _quantile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100)[percent - 1]


# Alert latency --------------------------------------------------------------------------------------------


def alert_latency(base_url: str, headers: dict[str, str], charge_id: int, product: str) -> list[float]:
    """Seconds from each violating point's 201 until ``GET /quality/alerts`` shows its alert."""
    path = f"{API_PREFIX}/charges/{charge_id}/measurements"
    query = {"product_sku": product, "parameter": LATENCY_PARAMETER, "limit": "10"}
    latencies = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        _new_series(http, product, LATENCY_PARAMETER, limits=True)
        for sample in range(LATENCY_SAMPLES + 3):  # the first three warm the paths up
            side = 1 if sample % 2 else -1
            response = http.post(
                path, json={"parameter": LATENCY_PARAMETER, "value": CENTER + side * 5 * SIGMA}
            )
            acknowledged = time.perf_counter()
            if response.status_code != 201:
                raise RuntimeError(f"measurement refused: {response.status_code} {response.text[:300]}")
            measurement_id = response.json()["id"]
            while True:
                page = http.get(f"{API_PREFIX}/quality/alerts", params=query)
                seen = time.perf_counter()
                page.raise_for_status()
                if any(alert["measurement_id"] == measurement_id for alert in page.json()["items"]):
                    break
                if seen - acknowledged > LATENCY_TIMEOUT_SECONDS:
                    raise RuntimeError(f"no alert for measurement {measurement_id} within 10 s")
                time.sleep(LATENCY_POLL_SECONDS)
            if sample >= 3:
                latencies.append(seen - acknowledged)
            time.sleep(0.05)
    return latencies


# Check cost against history -------------------------------------------------------------------------------


async def _history_series(url: str, prior: int) -> tuple[int, RuleChecker, MeasurementWriter, Any]:
    """A series with limits and ``prior`` points copied in; (charge id, checker, writer, engine)."""
    engine = create_engine(load_settings(database_url=url))
    sessions = create_session_factory(engine)
    cache = CacheManager(build_backend("none"))
    start = datetime.now(UTC) - timedelta(days=30)
    async with sessions.begin() as session:
        (charge,) = await ChargeRepository(session).insert_many(
            [
                {
                    "charge_number": "CH-2026-910000",
                    "product_sku": HISTORY_PRODUCT,
                    "quantity": Decimal(1),
                    "unit": "pcs",
                    "line": "L1",
                    "status": "in_production",
                    "produced_at": start,
                }
            ]
        )
        session.add(
            QualitySpec(
                product_sku=HISTORY_PRODUCT,
                parameter=HISTORY_PARAMETER,
                unit="mm",
                lsl=CENTER - 4 * SIGMA,
                usl=CENTER + 4 * SIGMA,
            )
        )
    charge_id = int(charge.id)
    await ControlLimitsService(sessions, cache).set_limits(
        HISTORY_PRODUCT, HISTORY_PARAMETER, LimitsBody(center=CENTER, sigma=SIGMA)
    )
    # The history spans the 30 days before now; the timed points follow it.
    spacing = timedelta(days=29) / prior
    rng = random.Random(3)
    records = [
        (charge_id, HISTORY_PRODUCT, HISTORY_PARAMETER, rng.gauss(CENTER, SIGMA), start + i * spacing, start)
        for i in range(prior)
    ]
    conn = await asyncpg.connect(driver_url(url), timeout=10)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'measurements' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        # Bulk load as one would restore it: no per-row foreign-key trigger, indexes built afterwards.
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            await conn.copy_records_to_table(
                "measurements",
                records=records,
                columns=("charge_id", "product_sku", "parameter", "value", "measured_at", "created_at"),
            )
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return charge_id, RuleChecker(sessions, cache), MeasurementWriter(sessions, cache), engine


async def _check_costs(urls: dict[int, str], samples: int) -> dict[int, list[float]]:
    series = {prior: await _history_series(url, prior) for prior, url in urls.items()}
    timings: dict[int, list[float]] = {prior: [] for prior in urls}
    rng = random.Random(9)
    try:
        for sample in range(samples + 2):  # the first two warm connections and statement caches
            for prior, (charge_id, checker, writer, _engine) in series.items():
                value = rng.gauss(CENTER, SIGMA)
                point = NewMeasurement(
                    charge_id, HISTORY_PRODUCT, HISTORY_PARAMETER, value, datetime.now(UTC)
                )
                await writer.write([point])
                started = time.perf_counter()
                outcome = await checker.check(100)
                elapsed = time.perf_counter() - started
                if len(outcome.claimed) != 1:
                    raise RuntimeError(f"the check took {len(outcome.claimed)} outbox rows, not 1")
                if sample >= 2:
                    timings[prior].append(elapsed)
    finally:
        for _charge_id, _checker, _writer, engine in series.values():
            await engine.dispose()
    return timings


def check_cost(sizes: tuple[int, ...], samples: int = CHECK_SAMPLES) -> dict[int, list[float]]:
    with ExitStack() as stack:
        urls = {prior: stack.enter_context(postgres_database("erp_bench_check")) for prior in sizes}
        for url in urls.values():
            upgrade(load_settings(database_url=url))
        return asyncio.run(_check_costs(urls, samples))


# The run and its result -----------------------------------------------------------------------------------


@contextmanager
def _shipped(tmp: Path, admin_key: str) -> Iterator[tuple[str, str]]:
    """A database with the demo data and the server as shipped on it; (base URL, database URL)."""
    with postgres_database("erp_bench_loop") as url:
        env = {"ERP_DATABASE_URL": url, "ERP_BROKER_URL": f"sqla+sqlite:///{tmp}/broker.sqlite3"}
        run_cli(env, "migrate")
        run_cli(env, "seed")
        RESULTS.mkdir(parents=True, exist_ok=True)
        log_path = RESULTS / "quality-loop-server.log"  # kept: a refused batch is explained there
        log_path.unlink(missing_ok=True)
        with shipped_server(env, admin_key, log_path) as server:
            yield server.base_url, url


def run(history_sizes: tuple[int, ...] = HISTORY_SIZES) -> dict[str, Any]:
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    admin_key = new_admin_key()
    headers = auth_headers(admin_key)
    with tempfile.TemporaryDirectory() as tmp, _shipped(Path(tmp), admin_key) as (base_url, url):
        charge_id, product = asyncio.run(ingest_target(url))
        batches = batch_ingest(base_url, headers, url, charge_id, product)
        latencies = alert_latency(base_url, headers, charge_id, product)
    costs = check_cost(history_sizes)
    notes = [
        f"machine: {machine()}",
        f"{time.perf_counter() - began:.0f} s in all; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after on {os.cpu_count()} cores.",
    ]
    return report(notes, batches, latencies, costs)


def report(
    notes: list[str],
    batches: dict[str, list[dict[str, float]]],
    latencies: list[float],
    costs: dict[int, list[float]],
) -> dict[str, Any]:
    def rate(parameter: str, key: str) -> float:
        return median([r[key] for r in batches[parameter]])

    checked_rate = rate(CHECKED, "checked_per_s")
    p50, p95 = median(latencies) * 1000, _quantile(latencies, 95) * 1000
    short, long = min(costs), max(costs)
    cost_ms = {prior: median(values) * 1000 for prior, values in costs.items()}
    ratio = cost_ms[long] / cost_ms[short]
    per_batch = BATCHES_PER_ROUND * BATCH_ITEMS
    notes += [
        "Batch ingestion: the server as shipped (auth, rate limiter, access log on; one worker process, "
        f"which {BATCH_CONNECTIONS} connections keep busy: more only queue); they post "
        f"{BATCHES_PER_ROUND} batches of {BATCH_ITEMS:,} points per round "
        f"({per_batch:,} points), {ROUNDS} rounds per series, the two series alternating. Points are "
        f"Gaussian about the centre (sigma {SIGMA}), one per {POINT_SPACING.total_seconds() * 1000:.0f} ms "
        "of measured time, advancing across batches; all Nelson rules.",
        "acknowledged = points / time to the round's last 201; checked = points / time until the "
        "rule-check outbox is empty again (every check committed, its alerts stored).",
        f"Alert latency: {len(latencies)} violating points (5 sigma) posted one at a time; "
        f"GET /quality/alerts polled every {LATENCY_POLL_SECONDS * 1000:.0f} ms until it names the point.",
        f"Check cost: RuleChecker.check of one new point (in-process, no HTTP), {len(costs[short])} samples "
        f"per history, the histories checked in turn; prior points copied in (COPY).",
    ]
    batch_rows = [
        [
            label,
            round(rate(parameter, "acknowledged_per_s")),
            round(rate(parameter, "checked_per_s")),
            round(median([r["drain_s"] for r in batches[parameter]]), 2),
            round(rate(parameter, "p50_ms"), 1),
            round(median([r["alerts"] for r in batches[parameter]])),
        ]
        for label, parameter in (("stored limits: rules checked", CHECKED), ("no limits", UNCHECKED))
    ]
    return {
        "title": TITLE,
        "budgets": [
            {
                "figure": "batch ingestion with rules, checked (measurements/s, median)",
                "measured": round(checked_rate),
                "budget": BUDGET_CHECKED_RATE,
                "better": "higher",
            },
            {
                "figure": "checked/s with rules / acknowledged/s without (same run)",
                "measured": round(checked_rate / rate(UNCHECKED, "acknowledged_per_s"), 2),
                "budget": BUDGET_CHECKED_SHARE,
                "better": "higher",
            },
            {
                "figure": "alert visible after the 201, p95 (ms)",
                "measured": round(p95, 1),
                "budget": BUDGET_LATENCY_P95_MS,
                "better": "lower",
            },
            {
                "figure": f"check cost at {long:,} / {short:,} prior points (ratio of medians)",
                "measured": round(ratio, 2),
                "budget": BUDGET_COST_RATIO,
                "better": "lower",
            },
        ],
        "tables": [
            {
                "caption": f"Batch ingestion ({BATCH_ITEMS:,} points per POST), median of {ROUNDS} rounds",
                "columns": [
                    "series",
                    "acknowledged/s",
                    "checked/s",
                    "drain after last 201 s",
                    "p50 ms",
                    "alerts/round",
                ],
                "rows": batch_rows,
            },
            {
                "caption": "Alert latency: 201 of a violating point to its alert in GET /quality/alerts",
                "columns": ["samples", "p50 ms", "p95 ms", "max ms"],
                "rows": [[len(latencies), round(p50, 1), round(p95, 1), round(max(latencies) * 1000, 1)]],
            },
            {
                "caption": "On-ingest check of one new point against the series' history",
                "columns": ["prior points", "median ms", "p95 ms"],
                "rows": [
                    [f"{prior:,}", round(cost_ms[prior], 2), round(_quantile(values, 95) * 1000, 2)]
                    for prior, values in sorted(costs.items())
                ],
            },
        ],
        "notes": notes,
    }
