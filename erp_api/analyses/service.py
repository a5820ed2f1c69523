"""Use cases of anomaly analyses as the API sees them: submit one, read one, list a charge's.

A submitted analysis is committed first and published to the workers after the commit, so a worker
can never see a message for a row that does not exist. If publishing fails, the analysis stays
queued and unpublished, and the reaper publishes it later: the client's 202 is never a lost write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp_api.analyses.documents import analysis_dict, request_fingerprint
from erp_api.analyses.models import AnomalyAnalysis
from erp_api.analyses.repository import AnalysisRepository
from erp_api.analyses.schemas import AnalysisCreate, AnalysisListQuery
from erp_api.audit import trail as audit
from erp_api.charges.repository import ChargeRepository
from erp_api.errors import NotFound, ValidationFailed
from erp_api.jobs.dispatch import BrokerUnavailable, TaskClient
from erp_api.pagination import decode_cursor, page_of, rows_to_fetch
from erp_api.quality.service import QualityService

log = structlog.get_logger("erp_api.analyses")


@dataclass(frozen=True)
class Submission:
    analysis: AnomalyAnalysis
    created: bool
    """False when an earlier request with the same Idempotency-Key created it."""


class AnalysisService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], tasks: TaskClient, quality: QualityService
    ) -> None:
        self._sessions = sessions
        self._tasks = tasks
        self._quality = quality

    async def submit(
        self,
        charge_id: int,
        request: AnalysisCreate,
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        publish: bool = True,
    ) -> Submission:
        """Store a queued analysis and publish it; a repeated Idempotency-Key returns the first one.

        ``publish=False`` leaves publishing a new analysis to the caller (``publish``), e.g. after
        the HTTP response; one never published is picked up by the reaper all the same. A baseline
        for a parameter the charge has no (non-voided) measurements of is refused (422).
        """
        baseline = request.model_dump(mode="json")["baseline"]
        fingerprint = request_fingerprint(charge_id, request.rules, baseline)
        if idempotency_key is not None:
            existing = await self._by_key(idempotency_key)
            if existing is not None:
                return Submission(_same_request(existing, fingerprint, idempotency_key), created=False)
        if request.baseline:
            await self._require_measured(charge_id, sorted(request.baseline))
        values: dict[str, Any] = {
            "charge_id": charge_id,
            "rules": request.rules,
            "baseline": orjson.dumps(baseline).decode() if baseline is not None else None,
            "idempotency_key": idempotency_key,
            "request_fingerprint": fingerprint,
            "request_id": request_id,
        }
        try:
            async with self._sessions.begin() as session:
                if not await ChargeRepository(session).exists(charge_id):
                    raise NotFound(f"charge {charge_id} does not exist")
                analysis = await AnalysisRepository(session).insert(values)
                await audit.record(
                    session,
                    entity="analysis",
                    entity_id=analysis.id,
                    action="create",
                    after={
                        "charge_id": charge_id,
                        "rules": request.rules,
                        "idempotency_key": idempotency_key,
                    },
                )
        except IntegrityError:
            # A concurrent request with the same key won the unique constraint (or the charge was
            # deleted between the check and the insert).
            winner = await self._by_key(idempotency_key) if idempotency_key is not None else None
            if winner is None:
                raise NotFound(f"charge {charge_id} does not exist") from None
            return Submission(_same_request(winner, fingerprint, idempotency_key or ""), created=False)
        if publish:
            await self.publish(analysis.id)
        return Submission(analysis, created=True)

    async def _require_measured(self, charge_id: int, parameters: list[str]) -> None:
        """404 if the charge does not exist, 422 naming the baseline's parameters it has no data for."""
        measured = set(await self._quality.measured_parameters(charge_id))
        missing = [parameter for parameter in parameters if parameter not in measured]
        if not missing:
            return
        known = ", ".join(sorted(measured)) or "none"
        errors = [
            {
                "field": f"body.baseline.{parameter}",
                "message": f"charge {charge_id} has no measurements of {parameter!r} (it has: {known})",
                "type": "unmeasured_parameter",
            }
            for parameter in missing
        ]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(f"{errors[0]['field']}: {errors[0]['message']}{more}", errors)

    async def _by_key(self, key: str) -> AnomalyAnalysis | None:
        async with self._sessions() as session:
            return await AnalysisRepository(session).by_idempotency_key(key)

    async def publish(self, analysis_id: int) -> None:
        """Send a committed analysis to the workers; a broker failure is logged, never raised.

        Once the broker has the message the analysis is marked published, so the reaper leaves it
        waiting in line instead of sending it again.
        """
        try:
            await self._tasks.enqueue_analysis(analysis_id)
        except BrokerUnavailable as exc:
            # Committed and still queued: the reaper publishes queued analyses never published.
            log.warning("analysis_enqueue_failed", analysis_id=analysis_id, error=str(exc))
            return
        try:
            async with self._sessions.begin() as session:
                # A new analysis is at attempts 0; if a worker claimed it already, nothing to mark.
                await AnalysisRepository(session).mark_published(analysis_id, attempts=0)
        except (SQLAlchemyError, OSError) as exc:
            # Unmarked, the reaper sends it once more later: a duplicate message, which is harmless.
            log.warning("analysis_publish_not_recorded", analysis_id=analysis_id, error=str(exc))

    async def get(self, analysis_id: int) -> AnomalyAnalysis:
        async with self._sessions() as session:
            analysis = await AnalysisRepository(session).get(analysis_id)
        if analysis is None:
            raise NotFound(f"analysis {analysis_id} does not exist")
        return analysis

    async def page(self, charge_id: int, query: AnalysisListQuery) -> dict[str, Any]:
        after = decode_cursor(query.cursor)
        async with self._sessions() as session:
            if not await ChargeRepository(session).exists(charge_id):
                raise NotFound(f"charge {charge_id} does not exist")
            rows = await AnalysisRepository(session).page(
                charge_id, after=after, limit=rows_to_fetch(query.limit)
            )
        page = page_of(rows, query.limit, key=lambda analysis: (analysis.created_at, analysis.id))
        return page.document(analysis_dict)


def _same_request(existing: AnomalyAnalysis, fingerprint: str, key: str) -> AnomalyAnalysis:
    if existing.request_fingerprint != fingerprint:
        raise ValidationFailed(
            f"header.Idempotency-Key: {key!r} was already used for a different request; use a new key",
            [
                {
                    "field": "header.Idempotency-Key",
                    "message": "already used for a different request",
                    "type": "idempotency_key_reused",
                }
            ],
        )
    return existing
