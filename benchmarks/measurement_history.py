"""A long measurement history of one product, loaded in bulk: what the benchmarks of reads against
history (``bench_quality.history``, ``capability_summary``) time their reads on.

The points go round the parameters in turn, one every ``spacing``, normal(10, 0.03) from a seeded
generator, in charges of ``points_per_charge`` (or all in one charge); they are copied in 100,000
at a time, then the rollups are built as the migration builds them (bulk-loaded rows bypass the
writer) and the planner's statistics refreshed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from erp_api.charges.repository import ChargeRepository
from erp_api.db import create_engine, create_session_factory
from erp_api.quality.models import QualitySpec
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.summaries.reconciliation import rebuild as rebuild_rollups
from erp_api.settings import load_settings

COPY_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class History:
    """The shape of a seeded history; its points are the same for the same shape and size."""

    product_sku: str
    parameters: tuple[str, ...]
    seed: int
    # Charges are numbered CH-2026-<first_charge_number + i>.
    first_charge_number: int
    # None: one charge holds every point.
    points_per_charge: int | None = None
    target: float | None = None
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    spacing: timedelta = timedelta(seconds=10)


async def seed_history(url: str, history: History, rows: int) -> list[int]:
    """``rows`` measurements of ``history`` in a migrated database; returns the charge ids in order."""
    engine = create_engine(load_settings(database_url=url))
    sessions = create_session_factory(engine)
    per_charge = history.points_per_charge
    charges = 1 if per_charge is None else max(1, rows // per_charge)
    try:
        async with sessions.begin() as session:
            inserted = await ChargeRepository(session).insert_many(
                [
                    {
                        "charge_number": f"CH-2026-{history.first_charge_number + i}",
                        "product_sku": history.product_sku,
                        "quantity": Decimal(1),
                        "unit": "pcs",
                        "line": "L1",
                        "status": "in_production",
                        "produced_at": history.start,
                    }
                    for i in range(charges)
                ]
            )
            ids = [int(charge.id) for charge in inserted]
            for parameter in history.parameters:
                session.add(
                    QualitySpec(
                        product_sku=history.product_sku,
                        parameter=parameter,
                        unit="mm",
                        lsl=9.9,
                        usl=10.1,
                        target=history.target,
                    )
                )
        rng = random.Random(history.seed)
        parameters = history.parameters
        for first in range(0, rows, COPY_ROWS):
            records = [
                (
                    ids[0 if per_charge is None else min(i // per_charge, charges - 1)],
                    history.product_sku,
                    parameters[i % len(parameters)],
                    rng.gauss(10.0, 0.03),
                    history.start + i * history.spacing,
                    history.start,
                )
                for i in range(first, min(first + COPY_ROWS, rows))
            ]
            async with sessions.begin() as session:
                await MeasurementRepository(session).insert_bulk(records)
        await rebuild_rollups(sessions)
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                # History this long has met autovacuum in any running deployment (its insert threshold):
                # vacuumed, the visibility map lets the sample reads come from the index alone.
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("VACUUM (ANALYZE) measurements")
            else:
                await connection.exec_driver_sql("ANALYZE")
                await connection.commit()
    finally:
        await engine.dispose()
    return ids
