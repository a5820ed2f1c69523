"""Analyses: the running worker's heartbeat, and whether a queued analysis reached the broker

Revision ID: 0011_analysis_heartbeats
Revises: 0010_events
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import UTCDateTime

revision: str = "0011_analysis_heartbeats"
down_revision: str | None = "0010_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("anomaly_analyses") as batch:
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("published_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("anomaly_analyses") as batch:
        batch.drop_column("published_at")
        batch.drop_column("heartbeat_at")
