"""Phase I control limits of a (product, parameter) series: set by hand, computed from a baseline, listed.

Limits are appended, never updated (``ControlLimits``): the newest row is the one the control chart,
analyses and the on-ingest rule check use, and the older rows are its history -- who set which
limits, when, and from what.

Computed limits follow the individuals chart of :mod:`erp_api.quality.spc.chart`: center = mean and
sigma = MR-bar / 1.128 over the non-voided baseline points in measured order (measured_at, then id).
A baseline is at most ``MAX_BASELINE_POINTS`` points; a larger one is refused rather than silently cut.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cache import CacheManager
from erp_api.audit import trail as audit
from erp_api.charges.repository import ChargeRepository
from erp_api.db import utcnow
from erp_api.errors import NotFound, ValidationFailed
from erp_api.quality import cache_tags as quality_tags
from erp_api.quality.documents import limits_dict
from erp_api.quality.limits.repository import ControlLimitsRepository
from erp_api.quality.limits.schemas import LimitsBody, LimitsComputeBody
from erp_api.quality.models import ControlLimits
from erp_api.quality.repository import MeasurementRepository, SpecRepository
from erp_api.quality.spc.chart import individuals_limits
from erp_api.security.principal import current_principal

MAX_BASELINE_POINTS = 100_000
HISTORY_LENGTH = 100


class ControlLimitsService:
    """Sets, computes and lists the control limits of the series that have a spec."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: CacheManager) -> None:
        self._sessions = sessions
        self._cache = cache

    async def set_limits(self, product_sku: str, parameter: str, body: LimitsBody) -> ControlLimits:
        """Make ``body``'s centre and sigma the current limits of the series (source ``manual``)."""
        async with self._sessions.begin() as session:
            await _require_spec(session, product_sku, parameter)
            limits = await _append(
                session,
                product_sku,
                parameter,
                center=body.center,
                sigma=body.sigma,
                source="manual",
                basis=None,
            )
        await self._invalidate(product_sku, parameter)
        return limits

    async def compute_limits(
        self, product_sku: str, parameter: str, body: LimitsComputeBody
    ) -> ControlLimits:
        """Compute the limits from a baseline and make them current (source ``computed``).

        422 when the baseline has fewer than two non-voided points, more than ``MAX_BASELINE_POINTS``,
        no spread (every point equal), or names charges that do not exist or are of another product.
        """
        async with self._sessions.begin() as session:
            await _require_spec(session, product_sku, parameter)
            basis: dict[str, Any]
            if body.charge_ids is not None:
                charge_ids = sorted(set(body.charge_ids))
                await _require_charges_of(session, product_sku, charge_ids)
                basis = {"charge_ids": charge_ids}
            else:
                assert body.from_ is not None and body.to is not None
                charge_ids = None
                basis = {
                    "from": body.from_.astimezone(UTC).isoformat(),
                    "to": body.to.astimezone(UTC).isoformat(),
                }
            values = await MeasurementRepository(session).baseline_values(
                product_sku,
                parameter,
                measured_from=body.from_,
                measured_to=body.to,
                charge_ids=charge_ids,
                limit=MAX_BASELINE_POINTS + 1,
            )
            _check_baseline_size(len(values))
            lines = individuals_limits(values)
            if lines.center is None or lines.sigma is None or lines.sigma <= 0:
                _refuse_baseline(
                    "the baseline's points are all equal: it has no spread to compute sigma from"
                )
            assert lines.center is not None and lines.sigma is not None
            basis["n"] = len(values)
            limits = await _append(
                session,
                product_sku,
                parameter,
                center=lines.center,
                sigma=lines.sigma,
                source="computed",
                basis=basis,
            )
        await self._invalidate(product_sku, parameter)
        return limits

    async def limits_document(self, product_sku: str, parameter: str) -> dict[str, Any]:
        """``{"current": ..., "history": [...]}``: the newest limits and up to 100 rows, newest first."""
        async with self._sessions() as session:
            await _require_spec(session, product_sku, parameter)
            rows = await ControlLimitsRepository(session).history(product_sku, parameter, HISTORY_LENGTH)
        history = [limits_dict(row) for row in rows]
        return {"current": history[0] if history else None, "history": history}

    async def _invalidate(self, product_sku: str, parameter: str) -> None:
        await self._cache.invalidate_tags([quality_tags.limits_tag(product_sku, parameter)])


async def _require_spec(session: AsyncSession, product_sku: str, parameter: str) -> None:
    if await SpecRepository(session).get(product_sku, parameter) is None:
        raise NotFound(f"there is no spec for {product_sku}/{parameter}")


async def _require_charges_of(session: AsyncSession, product_sku: str, charge_ids: list[int]) -> None:
    states = await ChargeRepository(session).states(charge_ids)
    missing = [charge_id for charge_id in charge_ids if charge_id not in states]
    other = [charge_id for charge_id, (sku, _status) in sorted(states.items()) if sku != product_sku]
    errors = []
    if missing:
        errors.append(
            {
                "field": "body.charge_ids",
                "message": f"no such charges: {', '.join(map(str, missing))}",
                "type": "unknown_charge",
            }
        )
    if other:
        errors.append(
            {
                "field": "body.charge_ids",
                "message": f"charges of another product than {product_sku}: {', '.join(map(str, other))}",
                "type": "other_product",
            }
        )
    if errors:
        raise ValidationFailed(f"body.charge_ids: {errors[0]['message']}", errors)


def _check_baseline_size(n: int) -> None:
    if n < 2:
        _refuse_baseline(f"the baseline has {n} non-voided point(s); at least 2 are needed")
    if n > MAX_BASELINE_POINTS:
        _refuse_baseline(f"the baseline has more than {MAX_BASELINE_POINTS} points; choose a shorter one")


def _refuse_baseline(problem: str) -> NoReturn:
    raise ValidationFailed(problem, [{"field": "body", "message": problem, "type": "baseline"}])


async def _append(
    session: AsyncSession,
    product_sku: str,
    parameter: str,
    *,
    center: float,
    sigma: float,
    source: str,
    basis: dict[str, Any] | None,
) -> ControlLimits:
    limits = await ControlLimitsRepository(session).append(
        product_sku,
        parameter,
        center=center,
        sigma=sigma,
        source=source,
        basis=basis,
        created_by=current_principal().name[:100],
        created_at=utcnow(),
    )
    document = limits_dict(limits)
    await audit.record(
        session,
        entity="control_limits",
        entity_id=f"{product_sku}/{parameter}",
        action="set" if source == "manual" else "compute",
        after={key: document[key] for key in ("id", "center", "sigma", "ucl", "lcl", "source", "basis")},
    )
    return limits
