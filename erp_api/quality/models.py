"""Tables of the quality package: specifications per product and parameter, and measurements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Double, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, UTCDateTime, utcnow


class QualitySpec(Base):
    """Specification limits of one parameter of one product; at least one limit, target within them."""

    __tablename__ = "quality_specs"
    __table_args__ = (
        UniqueConstraint("product_sku", "parameter"),
        CheckConstraint("lsl IS NOT NULL OR usl IS NOT NULL", name="has_limit"),
        CheckConstraint("lsl IS NULL OR usl IS NULL OR lsl < usl", name="limits_ordered"),
        CheckConstraint(
            "target IS NULL OR ((lsl IS NULL OR target >= lsl) AND (usl IS NULL OR target <= usl))",
            name="target_within_limits",
        ),
        # Keyset pages of the spec list run in creation order.
        Index("ix_quality_specs_created_at", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(16))
    lsl: Mapped[float | None] = mapped_column(Double)
    usl: Mapped[float | None] = mapped_column(Double)
    target: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Measurement(Base):
    """One measured value of a parameter of a charge.

    ``product_sku`` is copied from the charge on insert. A charge's product never changes (it is not
    among the fields a charge update may touch), so the copy cannot go stale, and it lets summaries per
    product and time range read one index range of (product_sku, parameter, measured_at) -- already in
    the order the moving range needs -- instead of joining every measurement to its charge.
    """

    __tablename__ = "measurements"
    __table_args__ = (
        # One charge's series of one parameter in time order (lists, control charts, analyses);
        # it also serves the foreign key when a charge is deleted.
        Index(
            "ix_measurements_charge_id_parameter_measured_at", "charge_id", "parameter", "measured_at", "id"
        ),
        # Summaries per product, parameter and time range.
        Index(
            "ix_measurements_product_sku_parameter_measured_at",
            "product_sku",
            "parameter",
            "measured_at",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id", ondelete="CASCADE"))
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Double)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
