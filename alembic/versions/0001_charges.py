"""charges and their status history

Revision ID: 0001_charges
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, UTCDateTime

revision: str = "0001_charges"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_VALUES = ("planned", "in_production", "quarantined", "released", "rejected")


def upgrade() -> None:
    op.create_table(
        "charges",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_number", sa.String(32), nullable=False),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Numeric(18, 3), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("line", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("produced_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_charges"),
        sa.UniqueConstraint("charge_number", name="uq_charges_charge_number"),
        sa.CheckConstraint("quantity > 0", name="ck_charges_quantity_positive"),
        sa.CheckConstraint(f"status IN {STATUS_VALUES!r}", name="ck_charges_status_known"),
    )
    op.create_index("ix_charges_status_produced_at", "charges", ["status", "produced_at", "id"])
    op.create_index("ix_charges_product_sku_produced_at", "charges", ["product_sku", "produced_at", "id"])
    op.create_index("ix_charges_line_produced_at", "charges", ["line", "produced_at", "id"])
    op.create_index("ix_charges_produced_at", "charges", ["produced_at", "id"])

    op.create_table(
        "charge_status_changes",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_id", BigIntId, nullable=False),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_charge_status_changes"),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], ondelete="CASCADE", name="fk_charge_status_changes_charge_id_charges"
        ),
    )
    op.create_index(
        "ix_charge_status_changes_charge_id_changed_at", "charge_status_changes", ["charge_id", "changed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_charge_status_changes_charge_id_changed_at", table_name="charge_status_changes")
    op.drop_table("charge_status_changes")
    for name in (
        "ix_charges_produced_at",
        "ix_charges_line_produced_at",
        "ix_charges_product_sku_produced_at",
        "ix_charges_status_produced_at",
    ):
        op.drop_index(name, table_name="charges")
    op.drop_table("charges")
