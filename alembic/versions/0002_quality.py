"""quality specifications and measurements

Revision ID: 0002_quality
Revises: 0001_charges
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, UTCDateTime

revision: str = "0002_quality"
down_revision: str | None = "0001_charges"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quality_specs",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("lsl", sa.Double, nullable=True),
        sa.Column("usl", sa.Double, nullable=True),
        sa.Column("target", sa.Double, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quality_specs"),
        sa.UniqueConstraint("product_sku", "parameter", name="uq_quality_specs_product_sku_parameter"),
        sa.CheckConstraint("lsl IS NOT NULL OR usl IS NOT NULL", name="ck_quality_specs_has_limit"),
        sa.CheckConstraint("lsl IS NULL OR usl IS NULL OR lsl < usl", name="ck_quality_specs_limits_ordered"),
        sa.CheckConstraint(
            "target IS NULL OR ((lsl IS NULL OR target >= lsl) AND (usl IS NULL OR target <= usl))",
            name="ck_quality_specs_target_within_limits",
        ),
    )
    op.create_index("ix_quality_specs_created_at", "quality_specs", ["created_at", "id"])

    op.create_table(
        "measurements",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_id", BigIntId, nullable=False),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("measured_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_measurements"),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], ondelete="CASCADE", name="fk_measurements_charge_id_charges"
        ),
    )
    op.create_index(
        "ix_measurements_charge_id_parameter_measured_at",
        "measurements",
        ["charge_id", "parameter", "measured_at", "id"],
    )
    op.create_index(
        "ix_measurements_product_sku_parameter_measured_at",
        "measurements",
        ["product_sku", "parameter", "measured_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_measurements_product_sku_parameter_measured_at", table_name="measurements")
    op.drop_index("ix_measurements_charge_id_parameter_measured_at", table_name="measurements")
    op.drop_table("measurements")
    op.drop_index("ix_quality_specs_created_at", table_name="quality_specs")
    op.drop_table("quality_specs")
