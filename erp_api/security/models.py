"""Tables of the security package: API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, UTCDateTime, utcnow

ROLE_VALUES = ("viewer", "operator", "quality_manager", "admin")


class ApiKey(Base):
    """A key's public handle (prefix), its SHA-256 digest, who holds it and what it may do."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLE_VALUES!r}", name="role_known"),
        Index("ix_api_keys_prefix", "prefix"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16))
    # Unique: two workers ensuring the same bootstrap key at once cannot both insert it.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
