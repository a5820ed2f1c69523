"""Measurements: the (product, parameter, time) index carries voided_at, charge_id and value

On PostgreSQL the index is built, and the old one dropped, CONCURRENTLY: the measurements table is
the largest and the most written, and a plain CREATE INDEX would hold its writes (every ingestion)
for as long as the build takes. A concurrent build cannot run in a transaction, so these two steps
run in autocommit; a build that failed half-way leaves an invalid index, dropped before the next try.

Revision ID: 0012_measurement_series_points
Revises: 0011_analysis_heartbeats
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012_measurement_series_points"
down_revision: str | None = "0011_analysis_heartbeats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["product_sku", "parameter", "measured_at", "id"]
NEW = "ix_measurements_series_points"
OLD = "ix_measurements_product_sku_parameter_measured_at"


def upgrade() -> None:
    # Built before the old one goes, so that no moment of the upgrade lacks an index of the key.
    _replace_index(OLD, NEW, [*KEY, "voided_at", "charge_id", "value"])


def downgrade() -> None:
    _replace_index(NEW, OLD, KEY)


def _replace_index(old: str, new: str, columns: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(new, "measurements", columns)
        op.drop_index(old, table_name="measurements")
        return
    # 0008's backfill streams the measurements through a cursor that asyncpg cannot close, and an
    # index build refuses a table that an open cursor of the session reads.
    op.execute("CLOSE ALL")
    with op.get_context().autocommit_block():
        invalid = op.get_bind().scalar(
            sa.text(
                "SELECT count(*) FROM pg_index JOIN pg_class ON pg_class.oid = pg_index.indexrelid"
                " WHERE pg_class.relname = :name AND NOT pg_index.indisvalid"
            ),
            {"name": new},
        )
        if invalid:
            op.drop_index(new, table_name="measurements", postgresql_concurrently=True)
        op.create_index(new, "measurements", columns, postgresql_concurrently=True, if_not_exists=True)
        op.drop_index(old, table_name="measurements", postgresql_concurrently=True, if_exists=True)
