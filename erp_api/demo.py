"""Demo data for a first start: charges over several products and lines, seeded once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.repository import ChargeRepository
from erp_api.charges.states import ChargeStatus

PRODUCTS = ("PUMP-HOUSING-A", "VALVE-BODY-B", "GEAR-SHAFT-C", "SEAL-RING-D", "IMPELLER-E")
LINES = ("L1", "L2", "L3", "L4")
UNITS = {
    "PUMP-HOUSING-A": "pcs",
    "VALVE-BODY-B": "pcs",
    "GEAR-SHAFT-C": "pcs",
    "SEAL-RING-D": "kg",
    "IMPELLER-E": "pcs",
}
STATUS_WEIGHTS = {
    ChargeStatus.RELEASED: 60,
    ChargeStatus.IN_PRODUCTION: 15,
    ChargeStatus.PLANNED: 12,
    ChargeStatus.QUARANTINED: 8,
    ChargeStatus.REJECTED: 5,
}
DEMO_CHARGES = 2_400
BATCH = 500


def demo_charges(count: int = DEMO_CHARGES, seed: int = 20261122) -> list[dict[str, object]]:
    """Deterministic charges spread over the last ~200 days, numbered CH-<year>-<serial>."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    for serial in range(1, count + 1):
        produced_at = now - timedelta(minutes=(count - serial) * 120 + rng.randint(0, 90))
        product = rng.choice(PRODUCTS)
        rows.append(
            {
                "charge_number": f"CH-{produced_at.year}-{serial:06d}",
                "product_sku": product,
                "quantity": Decimal(rng.randint(50, 5000))
                if UNITS[product] == "pcs"
                else Decimal(f"{rng.uniform(10, 900):.3f}"),
                "unit": UNITS[product],
                "line": rng.choice(LINES),
                "status": rng.choices(statuses, weights)[0].value,
                "produced_at": produced_at,
            }
        )
    return rows


async def seed_charges(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Insert the demo charges unless the database already has charges; returns how many were added."""
    async with sessions.begin() as session:
        repository = ChargeRepository(session)
        if await repository.count() > 0:
            return 0
        rows = demo_charges()
        for start in range(0, len(rows), BATCH):
            await repository.insert_many(rows[start : start + BATCH])
    return len(rows)
