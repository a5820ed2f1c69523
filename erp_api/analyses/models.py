"""Tables of the analyses package: one row per anomaly analysis."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.analyses.states import STATUS_VALUES
from erp_api.db import Base, BigIntId, UTCDateTime, utcnow


class AnomalyAnalysis(Base):
    """An anomaly analysis of one charge's measurements, and the record of the job that runs it.

    ``baseline`` and ``result`` hold JSON text as written (orjson), so a status answer embeds the
    result without parsing it. ``claimed_by`` is the id of the task delivery that runs it now:
    a redelivery of that same task may take the analysis over, a duplicate message may not.
    ``heartbeat_at`` is renewed by the worker running the analysis while it runs (set by the claim):
    once it is older than the heartbeat timeout, that worker is gone. ``published_at`` is set once the
    queued analysis's message reached the broker; a queued analysis without it was never published.
    """

    __tablename__ = "anomaly_analyses"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUS_VALUES!r}", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # A charge's analyses, newest first (keyset pages).
        Index("ix_anomaly_analyses_charge_id_created_at", "charge_id", "created_at", "id"),
        # The reaper: queued or running rows whose last change is older than a limit.
        Index("ix_anomaly_analyses_status_updated_at", "status", "updated_at"),
        # Retention: finished rows older than a limit.
        Index("ix_anomaly_analyses_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id", ondelete="CASCADE"))
    rules: Mapped[str] = mapped_column(String(32))
    baseline: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
