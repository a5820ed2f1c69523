"""Demo data for a first start: charges over several products and lines, and their quality, seeded once."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.charges.models import Charge, ChargeStatusChange
from erp_api.charges.repository import ChargeRepository
from erp_api.charges.states import ChargeStatus
from erp_api.quality.models import QualitySpec
from erp_api.quality.records import NewMeasurement
from erp_api.quality.repository import MeasurementRepository
from erp_api.quality.summaries.rollups import SeriesRollups

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
# The life cycle that led each demo charge to its status, as the API would have recorded it.
STATUS_PATHS: dict[str, tuple[ChargeStatus, ...]] = {
    ChargeStatus.PLANNED: (),
    ChargeStatus.IN_PRODUCTION: (ChargeStatus.IN_PRODUCTION,),
    ChargeStatus.QUARANTINED: (ChargeStatus.IN_PRODUCTION, ChargeStatus.QUARANTINED),
    ChargeStatus.RELEASED: (ChargeStatus.IN_PRODUCTION, ChargeStatus.RELEASED),
    ChargeStatus.REJECTED: (ChargeStatus.IN_PRODUCTION, ChargeStatus.REJECTED),
}
DEMO_ACTOR = "system (demo seed)"


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


def demo_status_changes(charges: Sequence[Charge]) -> list[dict[str, object]]:
    """The status changes that brought each charge from planned to its status: production starts
    when the charge is produced, the decision on it two hours later."""
    rows: list[dict[str, object]] = []
    for charge in charges:
        previous = ChargeStatus.PLANNED
        for step, status in enumerate(STATUS_PATHS[charge.status]):
            rows.append(
                {
                    "charge_id": charge.id,
                    "from_status": previous.value,
                    "to_status": status.value,
                    "reason": "demo data",
                    "changed_at": charge.produced_at + timedelta(hours=2 * step),
                    "actor_key_id": None,
                    "actor_name": DEMO_ACTOR,
                    "actor_role": "admin",
                }
            )
            previous = status
    return rows


async def seed_charges(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Insert the demo charges and their status histories unless the database already has charges;
    returns how many charges were added.

    Seed data goes in through the repository: the API creates charges planned only.
    """
    async with sessions.begin() as session:
        repository = ChargeRepository(session)
        if await repository.count() > 0:
            return 0
        rows = demo_charges()
        for start in range(0, len(rows), BATCH):
            charges = await repository.insert_many(rows[start : start + BATCH])
            changes = demo_status_changes(charges)
            if changes:
                await session.execute(insert(ChargeStatusChange), changes)
    return len(rows)


# Quality: (parameter, unit, lsl, usl, target, process sigma) per product; one-sided specs where
# only one side matters (a leak test has a minimum, runout and imbalance have a maximum).
DEMO_SPECS: dict[str, tuple[tuple[str, str, float | None, float | None, float, float], ...]] = {
    "PUMP-HOUSING-A": (
        ("diameter_mm", "mm", 79.90, 80.10, 80.00, 0.025),
        ("weight_g", "g", 2450.0, 2550.0, 2500.0, 12.0),
        ("hardness_hrc", "HRC", 28.0, 34.0, 31.0, 0.7),
    ),
    "VALVE-BODY-B": (
        ("bore_mm", "mm", 24.95, 25.05, 25.00, 0.012),
        ("weight_g", "g", 880.0, 920.0, 900.0, 5.0),
        ("leak_test_bar", "bar", 150.0, None, 180.0, 6.0),
    ),
    "GEAR-SHAFT-C": (
        ("diameter_mm", "mm", 19.98, 20.02, 20.00, 0.005),
        ("hardness_hrc", "HRC", 58.0, 62.0, 60.0, 0.5),
        ("runout_mm", "mm", None, 0.03, 0.01, 0.004),
    ),
    "SEAL-RING-D": (
        ("thickness_mm", "mm", 2.95, 3.05, 3.00, 0.012),
        ("hardness_shore_a", "ShoreA", 65.0, 75.0, 70.0, 1.2),
        ("weight_g", "g", 11.5, 12.5, 12.0, 0.1),
    ),
    "IMPELLER-E": (
        ("diameter_mm", "mm", 149.8, 150.2, 150.0, 0.05),
        ("imbalance_gmm", "gmm", None, 5.0, 2.0, 0.6),
        ("weight_g", "g", 1180.0, 1220.0, 1200.0, 4.0),
    ),
}
MEASURED_EVERY_NTH_CHARGE = 4
POINTS_PER_PARAMETER = 12


def _line_offset(line: str, status: str, progress: float, sigma: float, rng: random.Random) -> float:
    """Shift of a charge's process mean, in units of sigma: what makes the demo data tell a story.

    L1 is centred, L2 runs slightly high, L3 drifts upward over the period (late charges leave the
    spec), L4 is centred but noisy; quarantined and rejected charges sit further out.
    """
    shift = {"L1": 0.0, "L2": 0.8, "L3": 4.5 * progress, "L4": rng.gauss(0.0, 1.5)}.get(line, 0.0)
    if status in {"quarantined", "rejected"}:
        shift += rng.choice((-1, 1)) * 3.5
    return shift * sigma


def demo_measurements(
    charges: Sequence[Row[int, str, str, str, datetime]], seed: int = 20261123
) -> list[NewMeasurement]:
    """Measurements for every MEASURED_EVERY_NTH_CHARGE-th charge that has been produced."""
    rng = random.Random(seed)
    produced = [charge for charge in charges if charge.status != ChargeStatus.PLANNED]
    rows = []
    for position, charge in enumerate(produced):
        if position % MEASURED_EVERY_NTH_CHARGE or charge.product_sku not in DEMO_SPECS:
            continue
        progress = position / max(len(produced) - 1, 1)
        for parameter, _unit, _lsl, _usl, target, sigma in DEMO_SPECS[charge.product_sku]:
            noise = sigma * (2.0 if charge.line == "L4" else 1.0)
            mean = target + _line_offset(charge.line, charge.status, progress, sigma, rng)
            for point in range(POINTS_PER_PARAMETER):
                value = round(rng.gauss(mean, noise), 4)
                measured_at = charge.produced_at + timedelta(minutes=5 * point + 1)
                rows.append(NewMeasurement(charge.id, charge.product_sku, parameter, value, measured_at))
    return rows


async def seed_quality(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """Insert the demo specs and measurements unless specs exist; returns (specs, measurements) added."""
    async with sessions.begin() as session:
        if await session.scalar(select(func.count()).select_from(QualitySpec)):
            return 0, 0
        now = datetime.now(UTC)
        specs = [
            {
                "product_sku": product,
                "parameter": parameter,
                "unit": unit,
                "lsl": lsl,
                "usl": usl,
                "target": target,
                "created_at": now,
                "updated_at": now,
            }
            for product, parameters in DEMO_SPECS.items()
            for parameter, unit, lsl, usl, target, _sigma in parameters
        ]
        await session.execute(insert(QualitySpec), specs)
        charges = (
            await session.execute(
                select(
                    Charge.id, Charge.product_sku, Charge.line, Charge.status, Charge.produced_at
                ).order_by(Charge.produced_at, Charge.id)
            )
        ).all()
        rows = demo_measurements(charges)
        await MeasurementRepository(session).insert_bulk(
            [(r.charge_id, r.product_sku, r.parameter, r.value, r.measured_at, now) for r in rows]
        )
        # Bulk-inserted rows bypass the writer: their series' rollups are built from them.
        for product_sku, parameter in sorted({(r.product_sku, r.parameter) for r in rows}):
            await SeriesRollups(session).rebuild(product_sku, parameter)
    return len(specs), len(rows)
