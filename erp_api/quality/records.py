"""Plain records of measurements passed between the service, the ingestor and the repository."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class SeriesPoints:
    """Consecutive non-voided points of a (product, parameter) series, in series order, as the on-ingest
    rule check reads them: one list per column. A check reads thousands of points and needs objects
    only for the few a rule fires at, so it builds no object per point."""

    ids: list[int] = field(default_factory=list)
    charge_ids: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    new: list[bool] = field(default_factory=list)
    """Whether each point is one of those being checked (rather than one before or after them)."""

    @classmethod
    def of(cls, rows: Iterable[tuple[int, int, float, bool]]) -> SeriesPoints:
        """The points of (id, charge_id, value, new) rows, in their order."""
        columns = tuple(zip(*rows, strict=True))
        if not columns:
            return cls()
        ids, charge_ids, values, new = columns
        return cls(list(ids), list(charge_ids), list(values), [bool(flag) for flag in new])

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, other: SeriesPoints) -> None:
        """Append ``other``'s points (those following these in the series)."""
        self.ids.extend(other.ids)
        self.charge_ids.extend(other.charge_ids)
        self.values.extend(other.values)
        self.new.extend(other.new)

    def head(self, count: int) -> SeriesPoints:
        """The first ``count`` points."""
        return SeriesPoints(self.ids[:count], self.charge_ids[:count], self.values[:count], self.new[:count])

    def last_new(self) -> int:
        """The index of the last new point, -1 if there is none."""
        for index in range(len(self.new) - 1, -1, -1):
            if self.new[index]:
                return index
        return -1
