"""Request and response shapes of the audit route."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from erp_api.schemas import QueryModel

MAX_AUDIT_PAGE = 200
# Printable text: names and ids end up in listings and log lines.
Text = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class AuditQuery(QueryModel):
    # Merged with the base's: only the alias ``id`` names the parameter, never ``entity_id``.
    model_config = ConfigDict(populate_by_name=False)

    entity: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="Kind of entity, e.g. charge, quality_spec, api_key"
    )
    entity_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, alias="id", description="Id of one entity (requires entity)"
    )
    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_PAGE)] = 50
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None

    @model_validator(mode="after")
    def _id_needs_entity(self) -> AuditQuery:
        if self.entity_id is not None and self.entity is None:
            raise ValueError("id needs entity: ids are only unique within one kind of entity")
        return self


class AuditActor(BaseModel):
    key_id: int | None
    name: str
    role: str


class AuditEventOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: AuditActor
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None = Field(description="Changed fields before the change (null on create)")
    after: dict[str, Any] | None = Field(description="Changed fields after the change (null on delete)")
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None
