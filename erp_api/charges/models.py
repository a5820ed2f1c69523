"""Tables of the charges package."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, UTCDateTime, utcnow

STATUS_VALUES = ("planned", "in_production", "quarantined", "released", "rejected")


class Charge(Base):
    __tablename__ = "charges"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(f"status IN {STATUS_VALUES!r}", name="status_known"),
        Index("ix_charges_status_produced_at", "status", "produced_at", "id"),
        Index("ix_charges_product_sku_produced_at", "product_sku", "produced_at", "id"),
        Index("ix_charges_line_produced_at", "line", "produced_at", "id"),
        Index("ix_charges_produced_at", "produced_at", "id"),
        # The list sorted by quantity; sorted by number, and searched by number prefix, it uses the
        # unique index of charge_number.
        Index("ix_charges_quantity", "quantity", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    # Compared and ordered by code point (PostgreSQL's "C" collation, whatever the database's
    # default; SQLite's only one), so that its unique index serves sorting and prefix searches.
    charge_number: Mapped[str] = mapped_column(
        String(32).with_variant(String(32, collation="C"), "postgresql"), unique=True
    )
    product_sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 3, asdecimal=True))
    unit: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    produced_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)


class ChargeStatusChange(Base):
    """One step of a charge's life cycle, with the reason given for it."""

    __tablename__ = "charge_status_changes"
    __table_args__ = (Index("ix_charge_status_changes_charge_id_changed_at", "charge_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id", ondelete="CASCADE"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who made the change: a key's holder, or the system (an automatic hold). No foreign key: the
    # history outlives the key.
    actor_key_id: Mapped[int | None] = mapped_column(BigIntId)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    actor_role: Mapped[str | None] = mapped_column(String(32))
