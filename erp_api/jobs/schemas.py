"""Response shapes of the jobs API (job status, manual runs) for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from erp_api.schemas import QueryModel


class JobOut(BaseModel):
    """What is known of one background job's runs (a run that was retried counts once, when it ends)."""

    name: str
    queue: str
    interval_seconds: float | None = Field(description="How often beat starts it; null: not scheduled")
    last_run: datetime | None
    last_finished: datetime | None
    last_status: Literal["succeeded", "failed", "retrying"] | None
    last_duration_seconds: float | None
    last_error: str | None
    runs: int
    successes: int
    failures: int
    retries: int
    success_rate: float | None
    average_duration_seconds: float | None
    max_duration_seconds: float | None


class JobStatusOut(BaseModel):
    jobs: list[JobOut]
    queues: dict[str, int | None] = Field(description="Messages waiting per queue; null if unknown")
    broker_error: str | None


class JobPath(QueryModel):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = Field(
        description="A periodic job, e.g. reap_analyses"
    )


class JobRunAccepted(BaseModel):
    name: str
    task_id: str
    queue: str
