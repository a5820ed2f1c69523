"""Tables of the quality package: specifications, measurements, attribute inspections, control limits,
alerts, the rule-check outbox, and the series rollups (running and hourly statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from erp_api.db import Base, BigIntId, JsonDocument, UTCDateTime, utcnow

ALERT_STATUS_VALUES = ("open", "acknowledged", "action_proposed", "resolved", "dismissed")


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
    # The run rules checked on every new measurement: a rule set, optionally narrowed to some of its
    # rule ids (comma-separated, e.g. "N1,N2,N5"); None means the whole set.
    rules: Mapped[str] = mapped_column(String(32), default="nelson")
    rule_ids: Mapped[str | None] = mapped_column(String(128))
    # Put a charge in quarantine as soon as an alert opens for it.
    auto_hold: Mapped[bool] = mapped_column(Boolean, default=False)
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
        # A charge's list of all its parameters in time order: the keyset page is one index range.
        Index("ix_measurements_charge_id_measured_at", "charge_id", "measured_at", "id"),
        # Per product, parameter and time range: rollup maintenance, the raw edges of ranges and the
        # summaries' samples. It carries what they read (voided_at, charge_id, value) so that SQLite
        # answers them from the index alone: a summary's samples cost a third less to read.
        Index(
            "ix_measurements_series_points",
            "product_sku",
            "parameter",
            "measured_at",
            "id",
            "voided_at",
            "charge_id",
            "value",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id", ondelete="CASCADE"))
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Double)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A voided measurement stays stored and listed, and counts nowhere (summaries, charts, limits,
    # rules). Voiding is the only correction: values are never edited.
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(Text)
    voided_by: Mapped[str | None] = mapped_column(String(100))


class ControlLimits(Base):
    """Phase I control limits of one (product, parameter) series; the row with the highest id is current.

    Rows are never updated: setting or computing limits appends one, so the history says who set
    which limits, when, and from what (``basis``: the baseline's time range or charges, and n).
    """

    __tablename__ = "control_limits"
    __table_args__ = (
        CheckConstraint("sigma > 0", name="sigma_positive"),
        CheckConstraint("source IN ('manual', 'computed')", name="source_known"),
        Index("ix_control_limits_product_sku_parameter_id", "product_sku", "parameter", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    center: Mapped[float] = mapped_column(Double)
    sigma: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(16))
    basis: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QualityAlert(Base):
    """One rule violation on one series: raised once (unique per rule and firing measurement), then
    moved through its stages by a quality manager."""

    __tablename__ = "quality_alerts"
    __table_args__ = (
        UniqueConstraint("rule", "measurement_id", name="uq_quality_alerts_rule_measurement_id"),
        CheckConstraint(f"status IN {ALERT_STATUS_VALUES!r}", name="status_known"),
        Index("ix_quality_alerts_status_id", "status", "id"),
        Index("ix_quality_alerts_charge_id_status", "charge_id", "status"),
        Index("ix_quality_alerts_product_sku_parameter_id", "product_sku", "parameter", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id"))
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(8))
    # The measurement at which the rule fired, and every measurement its pattern spans.
    measurement_id: Mapped[int] = mapped_column(BigIntId)
    measurement_ids: Mapped[list[int]] = mapped_column(JsonDocument)
    # The limits the rule was checked against.
    limits_id: Mapped[int | None] = mapped_column(BigIntId)
    center: Mapped[float] = mapped_column(Double)
    sigma: Mapped[float] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str | None] = mapped_column(String(100))


class RuleCheck(Base):
    """Outbox of the on-ingest rule check: written in the transaction that stores measurements.

    One row per (product, parameter) series a commit touched; the checker deletes the row in the
    transaction that stores the alerts it found, so a crash between commit and check loses nothing
    (the row is still there) and duplicates nothing (alerts are unique per rule and measurement).
    """

    __tablename__ = "rule_checks"
    __table_args__ = (Index("ix_rule_checks_created_at", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    product_sku: Mapped[str] = mapped_column(String(64))
    parameter: Mapped[str] = mapped_column(String(64))
    # The smallest id among the new measurements: the check looks at those and the points before.
    first_measurement_id: Mapped[int] = mapped_column(BigIntId)
    measurements: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeriesStats(Base):
    """Running statistics of one (product, parameter) series over all its non-voided measurements.

    Kept exact in every transaction that changes the series (``erp_api.quality.summaries.rollups``); the row is
    also the lock that orders those transactions. ``last_*`` is the series' latest point, so that a
    point appended at the end needs no lookup. Empty (n = 0) rows are kept as locks.
    """

    __tablename__ = "quality_series_stats"

    product_sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    parameter: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
    mean: Mapped[float] = mapped_column(Double)
    m2: Mapped[float] = mapped_column(Double)
    min: Mapped[float | None] = mapped_column(Double)
    max: Mapped[float | None] = mapped_column(Double)
    mr_sum: Mapped[float] = mapped_column(Double)
    out_of_spec: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    last_value: Mapped[float | None] = mapped_column(Double)


class HourlyStats(Base):
    """Statistics of one series' non-voided measurements within one UTC hour (never empty).

    ``hour`` counts whole hours since 1970-01-01 UTC. ``first_*``/``last_*`` are the hour's first and
    last points in series order, so that adjacent hours merge their moving ranges exactly.
    """

    __tablename__ = "quality_hourly_stats"

    product_sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    parameter: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float] = mapped_column(Double)
    m2: Mapped[float] = mapped_column(Double)
    min: Mapped[float] = mapped_column(Double)
    max: Mapped[float] = mapped_column(Double)
    mr_sum: Mapped[float] = mapped_column(Double)
    out_of_spec: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_id: Mapped[int] = mapped_column(BigInteger)
    first_value: Mapped[float] = mapped_column(Double)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float] = mapped_column(Double)


class Inspection(Base):
    """One attribute inspection of a charge's characteristic, in one of two forms:

    - defectives: ``inspected`` items, ``nonconforming`` of them defective (the p and np charts);
    - defects: ``units`` inspection units holding ``nonconformities`` defects (the c and u charts).

    ``product_sku`` is copied from the charge on insert, as for measurements, so that a product's
    samples of a characteristic are one index range in time order. Rows are never edited.
    """

    __tablename__ = "inspections"
    __table_args__ = (
        CheckConstraint(
            "(inspected IS NOT NULL AND nonconforming IS NOT NULL AND units IS NULL "
            "AND nonconformities IS NULL) OR (inspected IS NULL AND nonconforming IS NULL "
            "AND units IS NOT NULL AND nonconformities IS NOT NULL)",
            name="one_form",
        ),
        CheckConstraint(
            "inspected IS NULL OR (inspected >= 1 AND nonconforming >= 0 AND nonconforming <= inspected)",
            name="defectives_counted",
        ),
        CheckConstraint("units IS NULL OR (units >= 1 AND nonconformities >= 0)", name="defects_counted"),
        # A charge's inspections in time order (its list; the foreign key when a charge is deleted).
        Index("ix_inspections_charge_id_inspected_at", "charge_id", "inspected_at", "id"),
        # A product's samples of one characteristic in time order (the attribute charts).
        Index(
            "ix_inspections_product_sku_characteristic_inspected_at",
            "product_sku",
            "characteristic",
            "inspected_at",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("charges.id", ondelete="CASCADE"))
    product_sku: Mapped[str] = mapped_column(String(64))
    characteristic: Mapped[str] = mapped_column(String(64))
    inspected: Mapped[int | None] = mapped_column(Integer)
    nonconforming: Mapped[int | None] = mapped_column(Integer)
    units: Mapped[int | None] = mapped_column(Integer)
    nonconformities: Mapped[int | None] = mapped_column(Integer)
    inspected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
