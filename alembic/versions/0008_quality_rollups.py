"""Quality rollups: running and hourly statistics per series, built from the stored measurements;
an index for a charge's measurement list in time order

Revision ID: 0008_quality_rollups
Revises: 0007_charge_lists
Create Date: 2026-12-03
"""

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from erp_api.db import UTCDateTime
from erp_api.quality.summaries.series_stats import NOTHING, Point, Segment, hourly

revision: str = "0008_quality_rollups"
down_revision: str | None = "0007_charge_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2_000


def upgrade() -> None:
    op.create_index(
        "ix_measurements_charge_id_measured_at", "measurements", ["charge_id", "measured_at", "id"]
    )
    op.create_table(
        "quality_series_stats",
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("m2", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("mr_sum", sa.Double(), nullable=False),
        sa.Column("out_of_spec", sa.BigInteger(), nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("product_sku", "parameter", name="pk_quality_series_stats"),
    )
    op.create_table(
        "quality_hourly_stats",
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("m2", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("mr_sum", sa.Double(), nullable=False),
        sa.Column("out_of_spec", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime, nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column("first_value", sa.Double(), nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("product_sku", "parameter", "hour", name="pk_quality_hourly_stats"),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("quality_hourly_stats")
    op.drop_table("quality_series_stats")
    op.drop_index("ix_measurements_charge_id_measured_at", table_name="measurements")


# The rollups of the measurements stored so far, computed as erp_api.quality.summaries.rollups rebuilds them.

_measurements = sa.table(
    "measurements",
    sa.column("id", sa.BigInteger()),
    sa.column("product_sku", sa.String()),
    sa.column("parameter", sa.String()),
    sa.column("value", sa.Double()),
    sa.column("measured_at", UTCDateTime),
    sa.column("voided_at", UTCDateTime),
)
_specs = sa.table(
    "quality_specs",
    sa.column("product_sku", sa.String()),
    sa.column("parameter", sa.String()),
    sa.column("lsl", sa.Double()),
    sa.column("usl", sa.Double()),
)
_series_table = sa.table(
    "quality_series_stats",
    *(
        sa.column(name)
        for name in ("product_sku", "parameter", "n", "mean", "m2", "min", "max", "mr_sum", "out_of_spec")
    ),
    sa.column("last_at", UTCDateTime),
    sa.column("last_id"),
    sa.column("last_value"),
)
_hours_table = sa.table(
    "quality_hourly_stats",
    *(
        sa.column(name)
        for name in ("product_sku", "parameter", "hour", "n", "mean", "m2", "min", "max", "mr_sum")
    ),
    sa.column("out_of_spec"),
    sa.column("first_at", UTCDateTime),
    sa.column("first_id"),
    sa.column("first_value"),
    sa.column("last_at", UTCDateTime),
    sa.column("last_id"),
    sa.column("last_value"),
)


def _backfill(bind: sa.Connection) -> None:
    limits = {(row.product_sku, row.parameter): (row.lsl, row.usl) for row in bind.execute(sa.select(_specs))}
    m = _measurements.c
    rows = bind.execute(
        sa.select(m.product_sku, m.parameter, m.measured_at, m.id, m.value)
        .where(m.voided_at.is_(None))
        .order_by(m.product_sku, m.parameter, m.measured_at, m.id)
        .execution_options(stream_results=True, yield_per=_CHUNK)
    )
    for (product_sku, parameter), series in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
        points = (Point(row[2], row[3], row[4]) for row in series)
        _store(
            bind, product_sku, parameter, hourly(points, limits.get((product_sku, parameter), (None, None)))
        )


def _store(
    bind: sa.Connection, product_sku: str, parameter: str, hours: Iterable[tuple[int, Segment]]
) -> None:
    total = NOTHING
    pending: list[dict[str, Any]] = []
    for hour, segment in hours:
        total = total.then(segment)
        pending.append(
            {
                "product_sku": product_sku,
                "parameter": parameter,
                "hour": hour,
                **_figures(segment),
                **_ends(segment),
            }
        )
        if len(pending) >= _CHUNK:
            bind.execute(sa.insert(_hours_table), pending)
            pending = []
    if pending:
        bind.execute(sa.insert(_hours_table), pending)
    last = total.last
    assert last is not None
    bind.execute(
        sa.insert(_series_table),
        [
            {
                "product_sku": product_sku,
                "parameter": parameter,
                **_figures(total),
                "last_at": last.measured_at,
                "last_id": last.id,
                "last_value": last.value,
            }
        ],
    )


def _figures(segment: Segment) -> dict[str, Any]:
    m = segment.moments
    return {
        "n": m.n,
        "mean": m.mean,
        "m2": m.m2,
        "min": m.min,
        "max": m.max,
        "mr_sum": segment.mr_sum,
        "out_of_spec": m.out_of_spec,
    }


def _ends(segment: Segment) -> dict[str, Any]:
    first, last = segment.first, segment.last
    assert first is not None and last is not None
    return {
        "first_at": first.measured_at,
        "first_id": first.id,
        "first_value": first.value,
        "last_at": last.measured_at,
        "last_id": last.id,
        "last_value": last.value,
    }
