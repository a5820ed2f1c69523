"""Sending one attempt of a delivery: claim it, POST the stored bytes signed, record the answer.

The contract (at least once, never two attempts at once):

* ``claim`` is one conditional UPDATE of a pending delivery that is due: of two workers holding
  the same task (a redelivered message, a sweeper's duplicate) one sends, the other skips. The
  claim lasts the timeout plus a margin; a worker that dies holding it leaves the delivery to be
  sent again once the claim expires.
* The body is the stored text, byte for byte; ``webhook-id`` is the delivery's, the same on every
  attempt; ``webhook-timestamp`` and the signature are made for this attempt.
* Success is a 2xx answer. Redirects are not followed (a receiver that moved is a failure to fix,
  not a place to send signed data to); connect, read and write each time out, and so does the
  whole attempt; at most ``MAX_RESPONSE_BYTES`` of the answer are read.
* Any other outcome schedules the next attempt after the policy's jittered delay, or fails the
  delivery after the last one. A retry due before the next sweep is published with a countdown;
  later ones are published by the sweeper when due.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Any, Final, Literal

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api import __version__
from erp_api.db import utcnow
from erp_api.jobs.dispatch import BrokerUnavailable, TaskClient
from erp_api.observability.metrics import observe_webhook_attempt
from erp_api.webhooks.models import MAX_ERROR_LENGTH, WebhookSubscription
from erp_api.webhooks.policy import DeliveryPolicy
from erp_api.webhooks.repository import WebhookRepository
from erp_api.webhooks.signing import signed_headers

MAX_RESPONSE_BYTES: Final = 1024
"""How much of a receiver's answer is read (an excerpt of it goes into the log on failure)."""
EXCERPT_CHARS: Final = 200
USER_AGENT: Final = f"erp-api-webhooks/{__version__}"
DISABLED_ERROR: Final = "the subscription was disabled; not sent"

_TRANSPORT_ERRORS: Final[dict[type[httpx.HTTPError], str]] = {
    httpx.ConnectTimeout: "connecting timed out",
    httpx.ReadTimeout: "reading the answer timed out",
    httpx.WriteTimeout: "sending timed out",
    httpx.PoolTimeout: "no connection was free in time",
    httpx.ConnectError: "could not connect",
    httpx.RemoteProtocolError: "the receiver broke the HTTP protocol",
}

Outcome = Literal["delivered", "retry", "failed", "skipped"]
log = structlog.get_logger("erp_api.webhooks")


@dataclass(frozen=True)
class DeliveryReport:
    delivery_id: int
    outcome: Outcome
    attempt: int | None = None
    status_code: int | None = None
    retry_in_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: the receiver's status (None if none came back) and why it failed."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliverer:
    """Runs delivery attempts; one per process (it holds the HTTP connection pool). Close it."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tasks: TaskClient,
        policy: DeliveryPolicy,
    ) -> None:
        self._sessions = sessions
        self._tasks = tasks
        self._policy = policy
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(policy.timeout_seconds),
            follow_redirects=False,
            # Proxies and certificates come from the settings, never from the environment.
            trust_env=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def deliver(self, delivery_id: int) -> DeliveryReport:
        """Make the due attempt of ``delivery_id``, if it is pending, due and nobody else is on it."""
        now = utcnow()
        async with self._sessions.begin() as session:
            repository = WebhookRepository(session)
            delivery = await repository.claim(
                delivery_id,
                now=now,
                lease_until=now + timedelta(seconds=self._policy.lease_seconds),
                max_attempts=self._policy.max_attempts,
            )
            subscription = (
                await repository.subscription(delivery.subscription_id) if delivery is not None else None
            )
        if delivery is None:
            return DeliveryReport(delivery_id, "skipped")
        attempt = delivery.attempts
        if subscription is None or subscription.disabled_at is not None:
            answer, retry_in = Answer(None, DISABLED_ERROR, 0), None
        else:
            answer = await self._send(
                subscription, delivery.message_id, int(now.timestamp()), delivery.payload
            )
            retry_in = None if answer.delivered else self._policy.retry_delay(attempt)
        outcome: Outcome = "delivered" if answer.delivered else "retry" if retry_in is not None else "failed"
        by_broker = retry_in is not None and self._policy.scheduled_by_broker(retry_in)
        if not await self._record(
            delivery_id, attempt, now, answer, _next_state(outcome, retry_in, by_broker)
        ):
            # The claim expired and a later attempt owns the delivery now; this one is history.
            return DeliveryReport(delivery_id, "skipped", attempt, answer.status_code)
        observe_webhook_attempt(outcome)
        log.info(
            "webhook_attempt",
            delivery_id=delivery_id,
            subscription_id=delivery.subscription_id,
            attempt=attempt,
            status_code=answer.status_code,
            outcome=outcome,
            error=answer.error,
        )
        if retry_in is not None and by_broker:
            try:
                await self._tasks.enqueue_webhook_delivery(delivery_id, countdown=retry_in)
            except BrokerUnavailable as exc:
                log.warning("webhook_retry_deferred", delivery_id=delivery_id, error=str(exc))
        return DeliveryReport(delivery_id, outcome, attempt, answer.status_code, retry_in)

    async def _send(
        self, subscription: WebhookSubscription, message_id: str, timestamp: int, payload: str
    ) -> Answer:
        body = payload.encode("utf-8")
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(subscription.secret, message_id, timestamp, body),
        }
        started = perf_counter()
        status_code: int | None = None
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                async with self._http.stream(
                    "POST", subscription.url, content=body, headers=headers
                ) as response:
                    status_code = response.status_code
                    excerpt = await _read_excerpt(response)
                    location = response.headers.get("location")
        except TimeoutError:
            error: str | None = f"no answer within {self._policy.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = _transport_error(exc)
        else:
            error = None if 200 <= status_code < 300 else _status_error(status_code, excerpt, location)
        if status_code is not None and 200 <= status_code < 300:
            error = None  # accepted, even if reading the rest of its answer failed
        return Answer(status_code, error, round((perf_counter() - started) * 1000))

    async def _record(
        self, delivery_id: int, attempt: int, attempted_at: datetime, answer: Answer, state: dict[str, Any]
    ) -> bool:
        """Store the attempt and the delivery's next state; False if the delivery has moved on."""
        values = {**state, "last_status_code": answer.status_code, "last_error": answer.error}
        async with self._sessions.begin() as session:
            repository = WebhookRepository(session)
            if not await repository.finish(delivery_id, attempt, values):
                return False
            await repository.add_attempt(
                {
                    "delivery_id": delivery_id,
                    "attempt": attempt,
                    "attempted_at": attempted_at,
                    "status_code": answer.status_code,
                    "error": answer.error,
                    "duration_ms": answer.duration_ms,
                }
            )
        return True


def _next_state(outcome: Outcome, retry_in: float | None, by_broker: bool) -> dict[str, Any]:
    """The delivery's columns after an attempt with this outcome."""
    finished = utcnow()
    if outcome == "delivered":
        return {"status": "delivered", "delivered_at": finished, "next_attempt_at": None}
    if retry_in is None:
        return {"status": "failed", "next_attempt_at": None}
    due = finished + timedelta(seconds=retry_in)
    # A countdown task becomes available when due; with none, the sweeper publishes one then.
    return {"next_attempt_at": due, "enqueued_at": due if by_broker else None}


async def _read_excerpt(response: httpx.Response) -> bytes:
    """At most ``MAX_RESPONSE_BYTES`` of the body; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(char if char.isprintable() else " " for char in text).strip()
    return cleaned[:limit] + ("…" if len(cleaned) > limit else "")


def _status_error(status_code: int, excerpt: bytes, location: str | None) -> str:
    if 300 <= status_code < 400:
        target = _printable(location or "nowhere", EXCERPT_CHARS)
        return f"HTTP {status_code}: a redirect to {target}, not followed"
    text = _printable(excerpt.decode("utf-8", errors="replace"), EXCERPT_CHARS)
    return (f"HTTP {status_code}: {text}" if text else f"HTTP {status_code}")[:MAX_ERROR_LENGTH]


def _transport_error(exc: httpx.HTTPError) -> str:
    """Why no answer came back, in one line (never the request's headers)."""
    kind = _TRANSPORT_ERRORS.get(type(exc), type(exc).__name__)
    detail = _printable(str(exc), EXCERPT_CHARS)
    return f"{kind} ({detail})"[:MAX_ERROR_LENGTH] if detail else kind
