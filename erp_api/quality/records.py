"""Plain records of measurements passed between the service, the ingestor and the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from erp_api.audit.trail import Attribution


@dataclass(frozen=True, slots=True)
class NewMeasurement:
    """A validated measurement not yet stored; ``product_sku`` is its charge's."""

    charge_id: int
    product_sku: str
    parameter: str
    value: float
    measured_at: datetime
    # Who posted it, captured while the request was served: the row is written by the ingestor's task.
    attribution: Attribution | None = None

    def content(self) -> tuple[int, str, float, datetime]:
        """What identifies the row among the rows of one insert (equal contents are interchangeable)."""
        return (self.charge_id, self.parameter, self.value, self.measured_at)


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    """A committed measurement."""

    id: int
    charge_id: int
    parameter: str
    value: float
    measured_at: datetime
    created_at: datetime

    def content(self) -> tuple[int, str, float, datetime]:
        return (self.charge_id, self.parameter, self.value, self.measured_at)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """A non-voided point of a (product, parameter) series, as the on-ingest rule check reads it."""

    id: int
    charge_id: int
    value: float
    measured_at: datetime
    new: bool = False
    """Whether the point is one of those being checked (rather than one before or after them)."""

    @property
    def position(self) -> tuple[datetime, int]:
        """Where the point sits in its series: series are ordered by (measured_at, id)."""
        return (self.measured_at, self.id)
