"""Measurements: the (product, parameter, time) index carries voided_at, charge_id and value

Revision ID: 0012_measurement_series_points
Revises: 0011_analysis_heartbeats
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_measurement_series_points"
down_revision: str | None = "0011_analysis_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["product_sku", "parameter", "measured_at", "id"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0008's backfill streams the measurements through a cursor that asyncpg cannot close, and
        # CREATE INDEX refuses a table that an open cursor of the session reads.
        op.execute("CLOSE ALL")
    # Built before the old one goes, so that no moment of the upgrade lacks an index of the key.
    op.create_index(
        "ix_measurements_series_points", "measurements", [*KEY, "voided_at", "charge_id", "value"]
    )
    op.drop_index("ix_measurements_product_sku_parameter_measured_at", table_name="measurements")


def downgrade() -> None:
    op.create_index("ix_measurements_product_sku_parameter_measured_at", "measurements", KEY)
    op.drop_index("ix_measurements_series_points", table_name="measurements")
