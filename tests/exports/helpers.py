"""Rows stored straight into the tables the exports read, with any text the database can hold."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.models import Charge
from erp_api.http import API_PREFIX
from erp_api.quality.models import Measurement, QualityAlert

EXPORTS = f"{API_PREFIX}/exports"
T0 = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
BOM = "\ufeff"


async def store_charges(sessions: async_sessionmaker[AsyncSession], *rows: dict[str, Any]) -> list[int]:
    """Charges with defaults for what ``rows`` leave out; their ids, in order."""
    ids = []
    async with sessions.begin() as session:
        for serial, row in enumerate(rows, start=1):
            values = {
                "charge_number": f"CH-2026-{serial:06d}",
                "product_sku": "PUMP-A",
                "quantity": Decimal("125.5"),
                "unit": "pcs",
                "line": "L1",
                "status": "planned",
                "produced_at": T0 + timedelta(hours=serial),
                "created_at": T0,
                "updated_at": T0,
                "version": 1,
                **row,
            }
            ids.append(int(await session.scalar(insert(Charge).values(values).returning(Charge.id)) or 0))
    return ids


async def store_measurements(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, product_sku: str, *rows: dict[str, Any]
) -> list[int]:
    ids = []
    async with sessions.begin() as session:
        for index, row in enumerate(rows):
            values = {
                "charge_id": charge_id,
                "product_sku": product_sku,
                "parameter": "diameter_mm",
                "value": 80.0,
                "measured_at": T0 + timedelta(minutes=index),
                "created_at": T0,
                **row,
            }
            ids.append(
                int(await session.scalar(insert(Measurement).values(values).returning(Measurement.id)) or 0)
            )
    return ids


async def store_alerts(
    sessions: async_sessionmaker[AsyncSession], charge_id: int, *rows: dict[str, Any]
) -> list[int]:
    ids = []
    async with sessions.begin() as session:
        for index, row in enumerate(rows, start=1):
            values = {
                "charge_id": charge_id,
                "product_sku": "PUMP-A",
                "parameter": "diameter_mm",
                "rule": "N1",
                "measurement_id": index,
                "measurement_ids": [index],
                "limits_id": None,
                "center": 10.0,
                "sigma": 1.0,
                "status": "open",
                "opened_at": T0 + timedelta(minutes=index),
                "updated_at": T0 + timedelta(minutes=index),
                **row,
            }
            ids.append(
                int(await session.scalar(insert(QualityAlert).values(values).returning(QualityAlert.id)) or 0)
            )
    return ids


def csv_records(response: httpx.Response) -> list[dict[str, str]]:
    """The records of a CSV export by column name, read as a spreadsheet program would."""
    assert response.status_code == 200, response.text
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def ndjson_records(response: httpx.Response) -> list[dict[str, Any]]:
    """Each line of an NDJSON export parsed on its own."""
    assert response.status_code == 200, response.text
    assert response.content.endswith(b"\n") or response.content == b""
    return [orjson.loads(line) for line in response.content.split(b"\n")[:-1]]
