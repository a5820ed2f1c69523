"""Live events on PostgreSQL: write -> event latency at 100 connected SSE clients.

Two uvicorn processes serve one private database as shipped (keys on, gzip and access log on). CLIENTS
streams (``GET /api/v1/events?types=charge.updated``) are connected to process B; WRITES PATCHes of
a charge are sent to process A, one every WRITE_GAP_SECONDS. The latency of one event at one client
is the time from sending the PATCH to that client receiving the matching ``charge.updated`` (the
event names the charge version the PATCH produced): so it includes the write itself, the commit,
the NOTIFY to process B, its reader's query, the fan-out and the delivery. Budget: p95 <= 1 s.

``python -m benchmarks.bench_events [--clients N] [--writes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack
from typing import Any

import httpx
import orjson

from benchmarks.common import POSTGRES_ADMIN, machine, postgres_database, reachable, write_result
from erp_api.migrate import upgrade
from erp_api.settings import load_settings
from testing.processes import running_server

TOPIC = "events"
TITLE = "Live events (SSE, PostgreSQL, two processes)"
CLIENTS = 100
WRITES = 50
WRITE_GAP_SECONDS = 0.1
BUDGET_P95_S = 1.0
ADMIN_KEY = "erp_bench-events-admin-key-0123456789abcdefghijklmnopq"
TIMEOUT = httpx.Timeout(30.0)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _listen(
    base_url: str, ready: asyncio.Event, expected: int, sent: dict[int, float], latencies: list[float]
) -> int:
    received = 0
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http,
        http.stream("GET", f"{base_url}/api/v1/events", params={"types": "charge.updated"}) as response,
    ):
        response.raise_for_status()
        ready.set()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            version = orjson.loads(line[6:])["data"]["charge"]["version"]
            latencies.append(time.perf_counter() - sent[version])
            received += 1
            if received == expected:
                return received
    return received


async def _run(writer_url: str, reader_url: str, clients: int, writes: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers) as http:
        body = {"charge_number": "CH-BENCH-1", "product_sku": "PUMP-A", "quantity": "1", "unit": "pcs"}
        body |= {"line": "L1", "produced_at": "2026-04-01T06:00:00Z"}
        created = (await http.post(f"{writer_url}/api/v1/charges", json=body)).json()
        sent: dict[int, float] = {}
        latencies: list[float] = []
        readies = [asyncio.Event() for _ in range(clients)]
        listeners = [
            asyncio.create_task(_listen(reader_url, ready, writes, sent, latencies)) for ready in readies
        ]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)
        await asyncio.sleep(1.0)  # every stream subscribed
        version = created["version"]
        for serial in range(writes):
            sent[version + 1] = time.perf_counter()
            response = await http.patch(
                f"{writer_url}/api/v1/charges/{created['id']}", json={"line": f"L{serial % 9}"}
            )
            response.raise_for_status()
            version = response.json()["version"]
            await asyncio.sleep(WRITE_GAP_SECONDS)
        received = await asyncio.wait_for(asyncio.gather(*listeners), 120)
    return {
        "clients": clients,
        "writes": writes,
        "events_received": sum(received),
        "events_expected": clients * writes,
        "p50_s": round(statistics.median(latencies), 4),
        "p95_s": round(_percentile(latencies, 0.95), 4),
        "max_s": round(max(latencies), 4),
        "budget_p95_s": BUDGET_P95_S,
        "within_budget": _percentile(latencies, 0.95) <= BUDGET_P95_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--writes", type=int, default=WRITES)
    args = parser.parse_args()
    if not reachable(POSTGRES_ADMIN, 5432):
        raise SystemExit("PostgreSQL is not reachable (ERP_BENCH_POSTGRES_URL)")
    with postgres_database("erp_bench_events") as url:
        upgrade(load_settings(database_url=url))
        env = {
            "ERP_DATABASE_URL": url,
            "ERP_AUTH_ENABLED": "true",
            "ERP_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "ERP_RATE_LIMIT_ENABLED": "false",
            "ERP_EVENT_MAX_CLIENTS": str(max(args.clients, 500)),
        }
        with ExitStack() as stack:
            writer = stack.enter_context(running_server(env))
            reader = stack.enter_context(running_server(env))
            result = asyncio.run(_run(writer.base_url, reader.base_url, args.clients, args.writes))
    within = "yes" if result["within_budget"] else "NO"
    result = {
        "title": TITLE,
        "machine": machine(),
        **result,
        "tables": [
            {
                "caption": f"Write -> event at {result['clients']} SSE clients ({result['writes']} writes)",
                "columns": ["p50 (ms)", "p95 (ms)", "max (ms)", "budget p95 (ms)", "within", "events"],
                "rows": [
                    [
                        round(result["p50_s"] * 1000, 1),
                        round(result["p95_s"] * 1000, 1),
                        round(result["max_s"] * 1000, 1),
                        BUDGET_P95_S * 1000,
                        within,
                        f"{result['events_received']}/{result['events_expected']}",
                    ]
                ],
            }
        ],
        "notes": [
            "Writes go to process A, the clients stream from process B: the wake-up is PostgreSQL "
            "NOTIFY, the events are read from the event log (erp_api/events/hub.py).",
        ],
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    write_result(TOPIC, result)


if __name__ == "__main__":
    main()
