"""Request and response shapes of the key routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from erp_api.schemas import QueryModel, StrictBody
from erp_api.security.roles import Role

MAX_AUDIT_PAGE = 200
# Printable text: names and ids end up in listings and log lines.
Text = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class KeyCreate(StrictBody):
    role: Role
    name: Text = Field(description="Who or what holds the key, e.g. 'line 3 tablet'")


class KeyListQuery(QueryModel):
    include_revoked: bool = False


class KeyOut(BaseModel):
    """A key as listed: its id and public prefix, never the key itself."""

    id: int
    prefix: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself; shown once, store it now")


class KeyList(BaseModel):
    items: list[KeyOut]
