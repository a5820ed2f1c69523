"""Tables of the jobs package: one summary row per background job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, UTCDateTime


class JobRun(Base):
    """What operators see of one background job: a bounded summary of its runs, updated in place."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    successes: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    total_duration_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    max_duration_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_duration_seconds: Mapped[float | None] = mapped_column(Double)
    last_error: Mapped[str | None] = mapped_column(Text)
