"""Every way around the release decision that issue 12 found, tried as an operator would, refused.

A charge is created planned only; a released or rejected charge takes no edit and no measurement;
a transition honours If-Match (strong comparison only); a charge with measurements is not deleted;
a charge with open quality alerts is not released. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from erp_api.charges.models import Charge, ChargeStatusChange
from erp_api.http import API_PREFIX
from erp_api.quality.models import QualityAlert
from tests.charges.helpers import assert_problem, charge_payload, create, create_in
from tests.quality.helpers import measurements_url, put_spec

API = f"{API_PREFIX}/charges"
ClientAs = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def operator(client_as: ClientAs) -> httpx.AsyncClient:
    return await client_as("operator")


@pytest.fixture
async def manager(client_as: ClientAs) -> httpx.AsyncClient:
    return await client_as("quality_manager")


def sessions_of(app: Starlette) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = app.state.resources.sessions
    return sessions


async def status_changes(app: Starlette, charge_id: int) -> list[str]:
    async with sessions_of(app)() as session:
        stmt = select(ChargeStatusChange.to_status).where(ChargeStatusChange.charge_id == charge_id)
        return list((await session.scalars(stmt)).all())


async def add_alert(app: Starlette, charge_id: int, status: str, measurement_id: int) -> int:
    """An alert stored as the alerting code would store it (that code is tested in its own room)."""
    async with sessions_of(app).begin() as session:
        alert = new_alert(charge_id, status, measurement_id)
        session.add(alert)
        await session.flush()
        return alert.id


def new_alert(charge_id: int, status: str, measurement_id: int) -> QualityAlert:
    return QualityAlert(
        charge_id=charge_id,
        product_sku="PUMP-A",
        parameter="diameter",
        rule="N1",
        measurement_id=measurement_id,
        measurement_ids=[measurement_id],
        center=10.0,
        sigma=0.1,
        status=status,
    )


# Created planned only ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["released", "in_production", "planned"])
async def test_an_operator_cannot_create_a_charge_with_a_status(
    operator: httpx.AsyncClient, client: httpx.AsyncClient, status: str
) -> None:
    problem = assert_problem(await operator.post(API, json=charge_payload(1, status=status)), 422)
    assert [error["field"] for error in problem["errors"]] == ["body.status"]
    assert "transitions" in problem["detail"]
    assert (await client.get(API)).json()["items"] == []


async def test_an_operator_cannot_create_a_batch_with_a_status_and_nothing_is_stored(
    operator: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    batch = {"items": [charge_payload(1), charge_payload(2, status="released"), charge_payload(3)]}
    problem = assert_problem(await operator.post(f"{API}/batch", json=batch), 422)
    assert [error["field"] for error in problem["errors"]] == ["body.items.1.status"]
    assert (await client.get(API)).json()["items"] == []


async def test_created_charges_are_planned_and_have_no_history_yet(
    operator: httpx.AsyncClient,
) -> None:
    single = await create(operator, 1)
    batch = await operator.post(f"{API}/batch", json={"items": [charge_payload(2)]})
    assert [single["status"], *(item["status"] for item in batch.json()["items"])] == ["planned", "planned"]
    history = (await operator.get(f"{API}/{single['id']}/history")).json()
    assert history["items"] == []


# Released and rejected are final ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["released", "rejected"])
async def test_an_operator_cannot_patch_a_released_or_rejected_charge(
    operator: httpx.AsyncClient, client: httpx.AsyncClient, status: str
) -> None:
    charge = await create_in(client, 1, status)
    url = f"{API}/{charge['id']}"
    problem = assert_problem(await operator.patch(url, json={"quantity": "1"}), 409)
    assert problem["current"] == status
    assert status in problem["detail"]
    # Even with the current ETag: the precondition holds, the charge is still final.
    etag = (await operator.get(url)).headers["etag"]
    assert_problem(await operator.patch(url, json={"line": "L9"}, headers={"If-Match": etag}), 409)
    after = (await operator.get(url)).json()
    assert (after["quantity"], after["line"], after["version"]) == ("125.500", "L1", charge["version"])


@pytest.mark.parametrize("status", ["released", "rejected"])
async def test_an_operator_cannot_add_measurements_to_a_released_or_rejected_charge(
    operator: httpx.AsyncClient, client: httpx.AsyncClient, status: str
) -> None:
    assert (await put_spec(client, "PUMP-A", "diameter", lsl=9.0, usl=11.0)).status_code in (200, 201)
    charge = await create_in(client, 1, status)
    url = measurements_url(charge["id"])
    single = await operator.post(url, json={"parameter": "diameter", "value": 10.0})
    assert assert_problem(single, 409)["current"] == status
    batch = {"items": [{"parameter": "diameter", "value": 10.0, "measured_at": "2026-03-01T08:00:00Z"}]}
    assert assert_problem(await operator.post(url, json=batch), 409)["current"] == status
    assert (await operator.get(url)).json()["items"] == []


async def test_a_recalled_charge_takes_measurements_again(
    operator: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await put_spec(client, "PUMP-A", "diameter", lsl=9.0, usl=11.0)).status_code in (200, 201)
    charge = await create_in(client, 1, "released")
    await client.post(f"{API}/{charge['id']}/transitions", json={"to": "quarantined", "reason": "recall"})
    response = await operator.post(
        measurements_url(charge["id"]), json={"parameter": "diameter", "value": 10}
    )
    assert response.status_code == 201, response.text


# If-Match on transitions ------------------------------------------------------------------------


async def test_a_transition_with_a_stale_if_match_is_412_with_the_current_etag_and_changes_nothing(
    operator: httpx.AsyncClient, manager: httpx.AsyncClient, app: Starlette
) -> None:
    charge = await create(operator, 1)
    url = f"{API}/{charge['id']}"
    seen = (await manager.get(url)).headers["etag"]
    await operator.patch(url, json={"quantity": "200"})  # someone corrects the charge meanwhile
    stale = await manager.post(f"{url}/transitions", json={"to": "in_production"}, headers={"If-Match": seen})
    assert_problem(stale, 412)
    assert stale.headers["etag"] == f'"c{charge["id"]}v2"'
    assert (await manager.get(url)).json()["status"] == "planned"
    assert await status_changes(app, charge["id"]) == []

    fresh = await manager.post(
        f"{url}/transitions", json={"to": "in_production"}, headers={"If-Match": stale.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["etag"] == f'"c{charge["id"]}v3"'


async def test_a_transition_without_if_match_or_with_a_wildcard_is_allowed(
    operator: httpx.AsyncClient, manager: httpx.AsyncClient
) -> None:
    charge = await create(operator, 1)
    url = f"{API}/{charge['id']}/transitions"
    assert (await manager.post(url, json={"to": "in_production"})).status_code == 200
    assert (await manager.post(url, json={"to": "quarantined"}, headers={"If-Match": "*"})).status_code == 200


async def test_a_weak_etag_never_satisfies_if_match_on_a_patch_or_a_transition(
    operator: httpx.AsyncClient, manager: httpx.AsyncClient
) -> None:
    charge = await create(operator, 1)
    url = f"{API}/{charge['id']}"
    weak = {"If-Match": f'W/"c{charge["id"]}v1"'}
    assert_problem(await operator.patch(url, json={"line": "L2"}, headers=weak), 412)
    assert_problem(await manager.post(f"{url}/transitions", json={"to": "in_production"}, headers=weak), 412)
    assert (await operator.get(url)).json()["version"] == 1


async def test_if_none_match_keeps_the_weak_comparison(operator: httpx.AsyncClient) -> None:
    charge = await create(operator, 1)
    url = f"{API}/{charge['id']}"
    weak = await operator.get(url, headers={"If-None-Match": f'W/"c{charge["id"]}v1"'})
    assert weak.status_code == 304
    assert (await operator.get(url, headers={"If-None-Match": "*"})).status_code == 304


# Delete ------------------------------------------------------------------------------------------


async def test_an_operator_cannot_delete_a_charge_with_measurements(
    operator: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    assert (await put_spec(client, "PUMP-A", "diameter", lsl=9.0, usl=11.0)).status_code in (200, 201)
    charge = await create(operator, 1)
    url = f"{API}/{charge['id']}"
    posted = await operator.post(measurements_url(charge["id"]), json={"parameter": "diameter", "value": 10})
    assert posted.status_code == 201, posted.text
    problem = assert_problem(await operator.delete(url), 409)
    assert "measurements" in problem["detail"]
    assert (await operator.get(url)).status_code == 200
    assert len((await operator.get(measurements_url(charge["id"]))).json()["items"]) == 1
    # A planned charge without measurements still goes.
    empty = await create(operator, 2)
    assert (await operator.delete(f"{API}/{empty['id']}")).status_code == 204


# The release gate --------------------------------------------------------------------------------


@pytest.mark.parametrize("open_status", ["open", "acknowledged", "action_proposed"])
async def test_a_charge_with_an_open_alert_is_not_released(
    manager: httpx.AsyncClient, client: httpx.AsyncClient, app: Starlette, open_status: str
) -> None:
    charge = await create_in(client, 1, "in_production")
    other = await create_in(client, 2, "in_production")
    first = await add_alert(app, charge["id"], open_status, measurement_id=1)
    await add_alert(app, charge["id"], "resolved", measurement_id=2)
    second = await add_alert(app, charge["id"], "open", measurement_id=3)
    await add_alert(app, other["id"], "open", measurement_id=4)
    url = f"{API}/{charge['id']}"
    problem = assert_problem(await manager.post(f"{url}/transitions", json={"to": "released"}), 409)
    assert problem["open_alert_ids"] == [first, second]
    assert str(first) in problem["detail"]
    assert (await manager.get(url)).json()["status"] == "in_production"
    assert await status_changes(app, charge["id"]) == ["in_production"]
    # Quarantine (and reject) stay possible: they are what open alerts call for.
    assert (await manager.post(f"{url}/transitions", json={"to": "quarantined"})).status_code == 200
    assert_problem(await manager.post(f"{url}/transitions", json={"to": "released"}), 409)


async def test_a_charge_whose_alerts_are_all_resolved_or_dismissed_is_released(
    manager: httpx.AsyncClient, client: httpx.AsyncClient, app: Starlette
) -> None:
    charge = await create_in(client, 1, "quarantined")
    await add_alert(app, charge["id"], "resolved", measurement_id=1)
    await add_alert(app, charge["id"], "dismissed", measurement_id=2)
    response = await manager.post(f"{API}/{charge['id']}/transitions", json={"to": "released"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "released"


async def test_an_alert_opened_while_a_release_waits_for_the_charge_is_seen_by_the_release(
    manager: httpx.AsyncClient, client: httpx.AsyncClient, app: Starlette
) -> None:
    """The alerting side locks the charge row, then inserts its alert (the documented lock order);
    a release arriving meanwhile waits for that lock and then sees the alert."""
    charge = await create_in(client, 1, "in_production")
    url = f"{API}/{charge['id']}/transitions"
    release: asyncio.Task[httpx.Response] | None = None
    async with sessions_of(app).begin() as session:
        await session.execute(select(Charge.id).where(Charge.id == charge["id"]).with_for_update())
        alert = new_alert(charge["id"], "open", measurement_id=1)
        session.add(alert)
        await session.flush()
        release = asyncio.create_task(manager.post(url, json={"to": "released"}))
        await asyncio.sleep(0.3)  # time for the release to reach the lock; it cannot pass it
        assert not release.done()
    problem = assert_problem(await release, 409)
    assert problem["open_alert_ids"] == [alert.id]
    assert (await manager.get(f"{API}/{charge['id']}")).json()["status"] == "in_production"
