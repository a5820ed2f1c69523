"""Request and response shapes of attribute inspections (the data of the p, np, c and u charts)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from erp_api.quality.schemas import MAX_PAGE_SIZE, Characteristic
from erp_api.schemas import QueryModel, SchemaName, StrictBody, UtcDatetime

# Far beyond any sample, and within the 32-bit integer columns.
MAX_COUNT = 1_000_000_000
InspectionForm = Annotated[Literal["defectives", "defects"], SchemaName("InspectionForm")]
Size = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class InspectionIn(StrictBody):
    """One sample of a characteristic, in exactly one of two forms: ``inspected`` items of which
    ``nonconforming`` were defective (p and np charts), or ``units`` inspection units holding
    ``nonconformities`` defects in all (c and u charts)."""

    characteristic: Characteristic
    inspected: Size | None = Field(None, description="Items inspected (with nonconforming)")
    nonconforming: Count | None = Field(None, description="Defective items among them, at most inspected")
    units: Size | None = Field(None, description="Inspection units inspected (with nonconformities)")
    nonconformities: Count | None = Field(None, description="Defects found in those units")
    inspected_at: UtcDatetime | None = Field(None, description="With a time zone; defaults to now")

    @model_validator(mode="after")
    def _one_form(self) -> InspectionIn:
        defectives = (self.inspected, self.nonconforming)
        defects = (self.units, self.nonconformities)
        if any(value is not None for value in defectives) and any(value is not None for value in defects):
            raise ValueError(
                "give either inspected and nonconforming, or units and nonconformities, not both"
            )
        if all(value is None for value in (*defectives, *defects)):
            raise ValueError(
                "give inspected and nonconforming (defective items), or units and nonconformities (defects)"
            )
        if None in defectives and None in defects:
            raise ValueError("give inspected with nonconforming, and units with nonconformities")
        inspected, nonconforming = defectives
        if inspected is not None and nonconforming is not None and nonconforming > inspected:
            raise ValueError(f"nonconforming ({nonconforming}) cannot exceed inspected ({inspected})")
        return self


class InspectionOut(BaseModel):
    """The counts of the other form are null."""

    id: int
    charge_id: int
    characteristic: str
    form: InspectionForm
    inspected: int | None
    nonconforming: int | None
    units: int | None
    nonconformities: int | None
    inspected_at: datetime
    created_at: datetime


class InspectionListQuery(QueryModel):
    characteristic: Characteristic | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class InspectionPage(BaseModel):
    """Oldest first by (inspected_at, id)."""

    items: list[InspectionOut]
    next_cursor: str | None
