"""The durable event log behind the live event stream, and single-use stream tickets

Revision ID: 0010_events
Revises: 0009_inspections
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, JsonDocument, UTCDateTime

revision: str = "0010_events"
down_revision: str | None = "0009_inspections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("charge_id", BigIntId, nullable=True),
        sa.Column("product_sku", sa.String(64), nullable=True),
        sa.Column("payload", JsonDocument, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_table(
        "event_tickets",
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("key_id", BigIntId, nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash", name="pk_event_tickets"),
    )
    op.create_index("ix_event_tickets_expires_at", "event_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_event_tickets_expires_at", table_name="event_tickets")
    op.drop_table("event_tickets")
    op.drop_index("ix_events_created_at", table_name="events")
    op.drop_table("events")
