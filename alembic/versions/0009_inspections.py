"""Attribute inspections of charges: defectives (inspected, nonconforming) or defects (units,
nonconformities), for the p, np, c and u charts

Revision ID: 0009_inspections
Revises: 0008_quality_rollups
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, UTCDateTime

revision: str = "0009_inspections"
down_revision: str | None = "0008_quality_rollups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_id", BigIntId, nullable=False),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("characteristic", sa.String(64), nullable=False),
        sa.Column("inspected", sa.Integer(), nullable=True),
        sa.Column("nonconforming", sa.Integer(), nullable=True),
        sa.Column("units", sa.Integer(), nullable=True),
        sa.Column("nonconformities", sa.Integer(), nullable=True),
        sa.Column("inspected_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspections"),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], ondelete="CASCADE", name="fk_inspections_charge_id_charges"
        ),
        sa.CheckConstraint(
            "(inspected IS NOT NULL AND nonconforming IS NOT NULL AND units IS NULL "
            "AND nonconformities IS NULL) OR (inspected IS NULL AND nonconforming IS NULL "
            "AND units IS NOT NULL AND nonconformities IS NOT NULL)",
            name="ck_inspections_one_form",
        ),
        sa.CheckConstraint(
            "inspected IS NULL OR (inspected >= 1 AND nonconforming >= 0 AND nonconforming <= inspected)",
            name="ck_inspections_defectives_counted",
        ),
        sa.CheckConstraint(
            "units IS NULL OR (units >= 1 AND nonconformities >= 0)", name="ck_inspections_defects_counted"
        ),
    )
    op.create_index(
        "ix_inspections_charge_id_inspected_at", "inspections", ["charge_id", "inspected_at", "id"]
    )
    op.create_index(
        "ix_inspections_product_sku_characteristic_inspected_at",
        "inspections",
        ["product_sku", "characteristic", "inspected_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("inspections")
