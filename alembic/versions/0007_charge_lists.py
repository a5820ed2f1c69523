"""Charge lists a UI needs: sorted by quantity or number, searched by number prefix

Revision ID: 0007_charge_lists
Revises: 0006_webhooks
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_charge_lists"
down_revision: str | None = "0006_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_charges_quantity", "charges", ["quantity", "id"])
    # Charge numbers compared by code point whatever the database's collation, so that the unique
    # index (rebuilt here) serves the sort by number and the number prefix search; SQLite's
    # comparison is that already.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "charges",
            "charge_number",
            type_=sa.String(32, collation="C"),
            existing_type=sa.String(32),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "charges",
            "charge_number",
            type_=sa.String(32),
            existing_type=sa.String(32, collation="C"),
            existing_nullable=False,
        )
    op.drop_index("ix_charges_quantity", table_name="charges")
