"""Group commit of single measurements: the ingestor on its own, then through the app on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette

from erp_api.app import create_app
from erp_api.errors import ApiError, NotFound, ServiceUnavailable
from erp_api.quality.ingest import MeasurementIngestor
from erp_api.quality.records import NewMeasurement, StoredMeasurement
from erp_api.quality.writer import MeasurementWriter
from erp_api.settings import Settings
from tests.quality.helpers import (
    admin_headers,
    given_spec,
    measurements_url,
    new_charge,
    post_one,
    serving,
    tuned,
)

NOW = datetime(2026, 4, 1, tzinfo=UTC)


def row(value: float, charge_id: int = 1) -> NewMeasurement:
    return NewMeasurement(charge_id, "PUMP-A", "x", value, NOW)


class FakeWriter:
    """Stores rows in memory and records each call: a stand-in for the database in unit tests."""

    def __init__(self, refuse: float | None = None, broken: float | None = None) -> None:
        self.batches: list[list[float]] = []
        self.refuse = refuse
        self.broken = broken
        self.gate: asyncio.Event | None = None

    async def __call__(self, rows: Sequence[NewMeasurement]) -> list[StoredMeasurement | ApiError]:
        if self.gate is not None:
            await self.gate.wait()
        values = [r.value for r in rows]
        if self.broken in values and len(rows) > 0:
            raise IntegrityError("INSERT", {}, Exception("constraint"))
        self.batches.append(values)
        return [
            NotFound("refused")
            if r.value == self.refuse
            else StoredMeasurement(int(r.value), 1, "x", r.value, NOW, NOW)
            for r in rows
        ]


async def _started(writer: FakeWriter, **options: Any) -> MeasurementIngestor:
    settings = {"window_seconds": 0.02, "max_rows": 1000, "queue_bound": 1000, **options}
    ingestor = MeasurementIngestor(writer, **settings)
    await ingestor.start()
    return ingestor


# The ingestor on its own -----------------------------------------------------------------------------


async def test_rows_submitted_together_share_one_write_and_each_gets_its_own_result() -> None:
    writer = FakeWriter()
    ingestor = await _started(writer)
    results = await asyncio.gather(*(ingestor.submit(row(float(i))) for i in range(50)))
    await ingestor.stop()
    assert writer.batches == [[float(i) for i in range(50)]]
    assert [result.id for result in results] == list(range(50))


async def test_a_commit_takes_at_most_max_rows() -> None:
    writer = FakeWriter()
    ingestor = await _started(writer, max_rows=10)
    await asyncio.gather(*(ingestor.submit(row(float(i))) for i in range(35)))
    await ingestor.stop()
    assert [len(batch) for batch in writer.batches] == [10, 10, 10, 5]


async def test_a_refused_row_fails_only_its_own_request() -> None:
    ingestor = await _started(FakeWriter(refuse=3.0))
    results = await asyncio.gather(
        *(ingestor.submit(row(float(i))) for i in range(6)), return_exceptions=True
    )
    await ingestor.stop()
    assert [type(result).__name__ for result in results] == ["StoredMeasurement"] * 3 + ["NotFound"] + [
        "StoredMeasurement"
    ] * 2


async def test_a_constraint_error_in_a_batch_is_retried_row_by_row() -> None:
    writer = FakeWriter(broken=2.0)
    ingestor = await _started(writer)
    results = await asyncio.gather(
        *(ingestor.submit(row(float(i))) for i in range(5)), return_exceptions=True
    )
    await ingestor.stop()
    assert isinstance(results[2], IntegrityError)
    assert [r.value for i, r in enumerate(results) if i != 2] == [0.0, 1.0, 3.0, 4.0]  # type: ignore[union-attr]
    assert sorted(v for batch in writer.batches for v in batch) == [0.0, 1.0, 3.0, 4.0]


async def test_a_failed_commit_fails_exactly_the_requests_of_its_batch() -> None:
    calls = 0

    async def flaky(rows: Sequence[NewMeasurement]) -> list[StoredMeasurement | ApiError]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("connection lost")
        return [StoredMeasurement(int(r.value), 1, "x", r.value, NOW, NOW) for r in rows]

    ingestor = MeasurementIngestor(flaky, window_seconds=0.02, max_rows=1000, queue_bound=100)
    await ingestor.start()
    first = await asyncio.gather(*(ingestor.submit(row(float(i))) for i in range(3)), return_exceptions=True)
    second = await asyncio.gather(*(ingestor.submit(row(float(i))) for i in range(3, 5)))
    await ingestor.stop()
    assert all(isinstance(result, RuntimeError) for result in first)
    assert [result.id for result in second] == [3, 4]


async def test_a_full_queue_is_refused_with_retry_after() -> None:
    writer = FakeWriter()
    writer.gate = asyncio.Event()
    ingestor = await _started(writer, queue_bound=3, window_seconds=0)
    # The first row is taken by the (blocked) writer, the next three fill the queue, the fifth is refused.
    accepted = [asyncio.ensure_future(ingestor.submit(row(0.0)))]
    await asyncio.sleep(0.01)
    accepted += [asyncio.ensure_future(ingestor.submit(row(float(i)))) for i in range(1, 4)]
    await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable) as refused:
        await ingestor.submit(row(99.0))
    assert refused.value.headers["Retry-After"] == "1"
    writer.gate.set()
    assert [result.id for result in await asyncio.gather(*accepted)] == [0, 1, 2, 3]
    await ingestor.stop()


async def test_stop_commits_every_accepted_row_without_waiting_for_the_window() -> None:
    writer = FakeWriter()
    # A window of an hour and a stop timeout of seconds: a stop that waited for the window would
    # time out and fail the rows instead of committing them.
    ingestor = await _started(writer, window_seconds=3600, stop_timeout_seconds=10)
    pending = [asyncio.ensure_future(ingestor.submit(row(float(i)))) for i in range(5)]
    while ingestor.waiting < 4:  # noqa: ASYNC110 - polling a counter, no event to wait on
        await asyncio.sleep(0.005)
    async with asyncio.timeout(60):  # a hang guard only
        await ingestor.stop()
    assert [result.id for result in await asyncio.gather(*pending)] == [0, 1, 2, 3, 4]
    with pytest.raises(ServiceUnavailable):
        await ingestor.submit(row(5.0))


async def test_a_writer_stuck_past_the_stop_timeout_fails_its_rows_instead_of_hanging() -> None:
    writer = FakeWriter()
    writer.gate = asyncio.Event()
    ingestor = await _started(writer, window_seconds=0, stop_timeout_seconds=0.1)
    pending = [asyncio.ensure_future(ingestor.submit(row(float(i)))) for i in range(3)]
    await asyncio.sleep(0.01)
    await ingestor.stop()
    results = await asyncio.gather(*pending, return_exceptions=True)
    assert all(isinstance(result, ServiceUnavailable) for result in results)


async def test_max_rows_one_writes_each_row_in_its_own_call() -> None:
    writer = FakeWriter()
    ingestor = await _started(writer, max_rows=1)
    await asyncio.gather(*(ingestor.submit(row(float(i))) for i in range(5)))
    await ingestor.stop()
    assert sorted(writer.batches) == [[0.0], [1.0], [2.0], [3.0], [4.0]]


# Through the app, on SQLite and PostgreSQL ----------------------------------------------------------------


def _count_measurement_inserts(app: Starlette) -> list[str]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MEASUREMENTS"):
            statements.append(statement)

    event.listen(app.state.resources.engine.sync_engine, "before_cursor_execute", record)
    return statements


async def _stored_values(client: httpx.AsyncClient, charge_id: int) -> dict[int, float]:
    stored: dict[int, float] = {}
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(measurements_url(charge_id), params=params)).json()
        stored.update({item["id"]: item["value"] for item in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return stored


async def test_concurrent_single_posts_share_inserts_and_every_201_is_stored(settings: Settings) -> None:
    async with serving(tuned(settings, ingest_window_ms=20)) as (app, client):
        charge_id = await new_charge(client, 1)
        await given_spec(client, "x")
        inserts = _count_measurement_inserts(app)
        responses = await asyncio.gather(*(post_one(client, charge_id, "x", float(i)) for i in range(200)))
        assert [response.status_code for response in responses] == [201] * 200
        assert len(inserts) < 20, f"{len(inserts)} INSERTs for 200 requests"
        acknowledged = {response.json()["id"]: response.json()["value"] for response in responses}
        assert sorted(acknowledged.values()) == [float(i) for i in range(200)]
        assert await _stored_values(client, charge_id) == acknowledged


async def test_group_commit_off_writes_one_insert_per_request(settings: Settings) -> None:
    async with serving(tuned(settings, ingest_max_rows_per_commit=1)) as (app, client):
        charge_id = await new_charge(client, 1)
        await given_spec(client, "x")
        inserts = _count_measurement_inserts(app)
        responses = await asyncio.gather(*(post_one(client, charge_id, "x", float(i)) for i in range(20)))
        assert [response.status_code for response in responses] == [201] * 20
        assert len(inserts) == 20
        assert len(await _stored_values(client, charge_id)) == 20


async def test_a_full_queue_is_503_with_retry_after_and_accepted_rows_are_stored(settings: Settings) -> None:
    async with serving(tuned(settings, ingest_queue_bound=2, ingest_window_ms=300)) as (_app, client):
        charge_id = await new_charge(client, 1)
        await given_spec(client, "x")
        responses = await asyncio.gather(*(post_one(client, charge_id, "x", float(i)) for i in range(12)))
        refused = [response for response in responses if response.status_code == 503]
        accepted = [response for response in responses if response.status_code == 201]
        assert refused and accepted and len(refused) + len(accepted) == 12
        for response in refused:
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
        stored = await _stored_values(client, charge_id)
        assert stored == {response.json()["id"]: response.json()["value"] for response in accepted}


async def test_shutdown_commits_pending_writes_before_closing(settings: Settings) -> None:
    # A window of an hour (beyond what the settings accept, hence no validation) and a stop timeout
    # (the request timeout) of seconds: a shutdown that waited for the window would fail the rows.
    shutdown_settings = tuned(settings, request_timeout_seconds=10).model_copy(
        update={"ingest_window_ms": 3_600_000}
    )
    app = create_app(shutdown_settings)
    async with asyncio.timeout(60), app.router.lifespan_context(app):  # the timeout: a hang guard only
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=admin_headers(settings)
        )
        charge_id = await new_charge(client, 1)
        await given_spec(client, "x")
        posts = [asyncio.ensure_future(post_one(client, charge_id, "x", float(i))) for i in range(5)]
        # Four wait in the queue; the writer holds the first until the window closes.
        while app.state.resources.ingestor.waiting < 4:  # noqa: ASYNC110 - polling a counter, no event to wait on
            await asyncio.sleep(0.005)
    responses = await asyncio.gather(*posts)
    await client.aclose()
    assert [response.status_code for response in responses] == [201] * 5
    async with serving(settings) as (_app, reader):
        assert sorted((await _stored_values(reader, charge_id)).values()) == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_writer_refuses_rows_of_missing_charges_without_failing_the_others(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    charge_id = await new_charge(client, 1)
    await given_spec(client, "x")
    writer = MeasurementWriter(app.state.resources.sessions, app.state.resources.cache)
    good, gone = row(1.5, charge_id), row(2.5, 424242)
    stored, refused = await writer.write([good, gone])
    assert isinstance(stored, StoredMeasurement) and stored.value == 1.5
    assert isinstance(refused, NotFound)
    assert list((await _stored_values(client, charge_id)).values()) == [1.5]
