"""Builders shared by the rule-check and alert tests: a watched series, the engine's expected alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.http import API_PREFIX
from erp_api.quality.models import Measurement, QualityAlert
from erp_api.quality.spc.rules import RULE_SETS, RuleName, RuleSet, find_violations
from tests.quality.helpers import SPECS

ALERTS = f"{API_PREFIX}/quality/alerts"
CENTER, SIGMA = 10.0, 1.0
# Values by where they fall against CENTER +/- k SIGMA.
# One period of in-control data: no rule of either set fires on any number of repetitions of it
# (both sides, no long trend or alternation, a point between 1 and 2 sigma every 10 points against N7).
QUIET = (10.3, 9.6, 10.5, 10.6, 9.8, 10.1, 9.5, 9.4, 10.4, 11.5)
BEYOND_3_SIGMA = 14.0


def quiet(n: int) -> list[float]:
    """n points of in-control data."""
    return [QUIET[i % len(QUIET)] for i in range(n)]


async def watch(
    client: httpx.AsyncClient,
    product_sku: str = "PUMP-A",
    parameter: str = "diameter",
    *,
    center: float = CENTER,
    sigma: float = SIGMA,
    **spec: Any,
) -> None:
    """A spec (``spec`` overrides: rules, rule_ids, auto_hold) and manual limits for the series."""
    body = {"unit": "mm", "lsl": 0.0, "usl": 100.0, **spec}
    response = await client.put(f"{SPECS}/{product_sku}/{parameter}", json=body)
    assert response.status_code in (200, 201), response.text
    response = await client.put(
        f"{SPECS}/{product_sku}/{parameter}/limits", json={"center": center, "sigma": sigma}
    )
    assert response.status_code in (200, 201), response.text


async def start_production(client: httpx.AsyncClient, charge_id: int) -> None:
    response = await client.post(
        f"{API_PREFIX}/charges/{charge_id}/transitions", json={"to": "in_production"}
    )
    assert response.status_code == 200, response.text


async def stored_alerts(sessions: async_sessionmaker[AsyncSession]) -> list[QualityAlert]:
    async with sessions() as session:
        return list((await session.scalars(select(QualityAlert).order_by(QualityAlert.id))).all())


async def series_points(
    sessions: async_sessionmaker[AsyncSession], product_sku: str = "PUMP-A", parameter: str = "diameter"
) -> list[Measurement]:
    """The non-voided points of a series in series order (measured_at, id)."""
    async with sessions() as session:
        stmt = (
            select(Measurement)
            .where(
                Measurement.product_sku == product_sku,
                Measurement.parameter == parameter,
                Measurement.voided_at.is_(None),
            )
            .order_by(Measurement.measured_at, Measurement.id)
        )
        return list((await session.scalars(stmt)).all())


def expected_alerts(
    points: Sequence[Measurement],
    *,
    rules: RuleSet = "nelson",
    rule_ids: Sequence[RuleName] | None = None,
    center: float = CENTER,
    sigma: float = SIGMA,
) -> set[tuple[str, int]]:
    """(rule, measurement id) of every violation the engine finds on the whole series."""
    chosen = set(rule_ids or RULE_SETS[rules])
    return {
        (rule, points[index].id)
        for rule, index in find_violations([point.value for point in points], center, sigma, rules)
        if rule in chosen
    }


async def wait_for_alerts(
    client: httpx.AsyncClient, count: int, *, params: dict[str, Any] | None = None, within: float = 30.0
) -> list[dict[str, Any]]:
    """The alerts listed once at least ``count`` are (a hang guard, not a latency assertion)."""
    async with asyncio.timeout(within):
        while True:
            response = await client.get(ALERTS, params={"limit": 500, **(params or {})})
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            if len(items) >= count:
                return items
            await asyncio.sleep(0.05)
