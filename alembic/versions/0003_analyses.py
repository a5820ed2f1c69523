"""anomaly analyses (job records) and the job run summaries

Revision ID: 0003_analyses
Revises: 0002_quality
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, UTCDateTime

revision: str = "0003_analyses"
down_revision: str | None = "0002_quality"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_VALUES = ("queued", "running", "succeeded", "failed")


def upgrade() -> None:
    op.create_table(
        "anomaly_analyses",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_id", BigIntId, nullable=False),
        sa.Column("rules", sa.String(32), nullable=False),
        sa.Column("baseline", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_anomaly_analyses"),
        sa.UniqueConstraint("idempotency_key", name="uq_anomaly_analyses_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], ondelete="CASCADE", name="fk_anomaly_analyses_charge_id_charges"
        ),
        sa.CheckConstraint(f"status IN {STATUS_VALUES!r}", name="ck_anomaly_analyses_status_known"),
        sa.CheckConstraint("attempts >= 0", name="ck_anomaly_analyses_attempts_non_negative"),
    )
    op.create_index(
        "ix_anomaly_analyses_charge_id_created_at", "anomaly_analyses", ["charge_id", "created_at", "id"]
    )
    op.create_index("ix_anomaly_analyses_status_updated_at", "anomaly_analyses", ["status", "updated_at"])
    op.create_index("ix_anomaly_analyses_finished_at", "anomaly_analyses", ["finished_at"])

    op.create_table(
        "job_runs",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("total_duration_seconds", sa.Double, nullable=False),
        sa.Column("max_duration_seconds", sa.Double, nullable=False),
        sa.Column("last_started_at", UTCDateTime, nullable=True),
        sa.Column("last_finished_at", UTCDateTime, nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_duration_seconds", sa.Double, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_job_runs"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_anomaly_analyses_finished_at", table_name="anomaly_analyses")
    op.drop_index("ix_anomaly_analyses_status_updated_at", table_name="anomaly_analyses")
    op.drop_index("ix_anomaly_analyses_charge_id_created_at", table_name="anomaly_analyses")
    op.drop_table("anomaly_analyses")
