"""The webhook tasks as a worker runs them (executed in-process): a delivery attempt by id through
the worker runtime, its retry published to the webhooks queue, the sweeper, the job records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery

from erp_api.jobs.client import broker_queue_lengths
from erp_api.jobs.names import WEBHOOK_DELIVER_TASK, WEBHOOK_SWEEP_TASK
from erp_api.jobs.runs import JobRunRepository
from erp_api.webhooks.events import EventType
from erp_api.webhooks.outbox import publish
from erp_api.webhooks.schemas import WebhookCreate
from tasks.runtime import runtime_for
from tests.webhooks.receiver import Receiver, Reply


@pytest.fixture
def receiver(celery_app: Celery) -> Iterator[Receiver]:
    """A receiver subscribed to alert.opened through the worker's services."""
    runtime = runtime_for(celery_app)
    with Receiver().running() as running:
        data = WebhookCreate(url=running.url, events=[EventType.ALERT_OPENED])
        _subscription, running.secret = runtime.run(runtime.resources.webhooks.create(data))
        yield running


def published(app: Celery) -> int:
    runtime = runtime_for(app)

    async def store() -> int:
        async with runtime.sessions.begin() as session:
            (delivery_id,) = await publish(session, "alert.opened", {"id": 1})
        return delivery_id

    return runtime.run(store())


def runs_of(app: Celery, job: str) -> tuple[int, int]:
    runtime = runtime_for(app)

    async def load() -> tuple[int, int]:
        async with runtime.sessions() as session:
            row = (await JobRunRepository(session).all([job]))[job]
        return row.runs, row.successes

    return runtime.run(load())


def test_the_delivery_task_sends_the_attempt_and_is_recorded_as_a_job_run(
    celery_app: Celery, receiver: Receiver
) -> None:
    delivery_id = published(celery_app)
    outcome = celery_app.tasks[WEBHOOK_DELIVER_TASK].apply(args=[delivery_id]).get()
    assert outcome["outcome"] == "delivered"
    assert (outcome["attempt"], outcome["status_code"]) == (1, 200)
    (request,) = receiver.requests
    assert request.verified["data"] == {"id": 1}
    assert runs_of(celery_app, "deliver_webhook") == (1, 1)
    # A second message for the same delivery (a redelivery) sends nothing.
    assert celery_app.tasks[WEBHOOK_DELIVER_TASK].apply(args=[delivery_id]).get()["outcome"] == "skipped"
    assert len(receiver.requests) == 1


def test_a_failed_attempt_publishes_its_retry_on_the_webhooks_queue(
    celery_app: Celery, receiver: Receiver
) -> None:
    receiver.reply_with(Reply(502))
    outcome = celery_app.tasks[WEBHOOK_DELIVER_TASK].apply(args=[published(celery_app)]).get()
    assert outcome["outcome"] == "retry"
    assert 4.0 <= outcome["retry_in_seconds"] <= 6.0  # the first delay of the default schedule, jittered
    assert broker_queue_lengths(celery_app, timeout=5.0)["webhooks"] == 1


def test_the_sweep_task_runs_and_is_recorded(celery_app: Celery, receiver: Receiver) -> None:
    published(celery_app)
    report = celery_app.tasks[WEBHOOK_SWEEP_TASK].apply().get()
    # The new delivery's task is on its way: nothing to publish yet.
    assert report == {"published": 0, "failed": 0, "broker_error": None}
    assert runs_of(celery_app, "sweep_webhooks") == (1, 1)
