"""``python -m erp_api rollups check|rebuild``: the check says whether the rollups match the
measurements (exit code 1 and the differing figures when not); a rebuild makes them match."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from erp_api.__main__ import main
from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.quality.models import HourlyStats, Measurement, SeriesStats
from erp_api.settings import load_settings
from tests.database import charge_row

T0 = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)


async def _execute(database_url: str, *statements: object) -> None:
    engine = create_engine(load_settings(database_url=database_url))
    try:
        async with create_session_factory(engine).begin() as session:
            for statement in statements:
                await session.execute(statement)  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def _store_without_rollups(database_url: str) -> None:
    """A charge and 150 measurements over three hours stored bare, as rows from before the rollups."""
    engine = create_engine(load_settings(database_url=database_url))
    try:
        async with create_session_factory(engine).begin() as session:
            (charge,) = await ChargeRepository(session).insert_many([charge_row(produced_at=T0)])
            rows = [
                {
                    "charge_id": charge.id,
                    "product_sku": "PUMP-A",
                    "parameter": "diameter",
                    "value": 10.0 + (i % 7) / 10,
                    "measured_at": T0 + timedelta(minutes=i * 1.2),
                    "created_at": T0,
                }
                for i in range(150)
            ]
            await session.execute(insert(Measurement), rows)
    finally:
        await engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def test_check_reports_differences_and_rebuild_repairs_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ERP_DATABASE_URL", database_url)
    assert _run(capsys, "rollups", "check") == (0, "rollups match the measurements\n")

    asyncio.run(_store_without_rollups(database_url))
    status, out = _run(capsys, "rollups", "check")
    assert status == 1
    assert "PUMP-A/diameter series: n is 0, recomputed 150" in out
    assert "PUMP-A/diameter hour" in out

    assert _run(capsys, "rollups", "rebuild") == (0, "rollups rebuilt from the measurements: 1 series\n")
    assert _run(capsys, "rollups", "check") == (0, "rollups match the measurements\n")

    asyncio.run(
        _execute(
            database_url,
            update(HourlyStats).where(HourlyStats.n > 40).values(out_of_spec=3),
            update(SeriesStats).values(mean=11.0),
        )
    )
    status, out = _run(capsys, "rollups", "check")
    assert status == 1
    assert "PUMP-A/diameter series: mean is 11.0" in out
    assert "out_of_spec is 3, recomputed 0" in out
    assert _run(capsys, "rollups", "rebuild")[0] == 0
    assert _run(capsys, "rollups", "check")[0] == 0
