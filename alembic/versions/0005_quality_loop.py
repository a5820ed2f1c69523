"""The closed quality loop: who changed a charge's status, spec rule sets, voided measurements,
control limits, quality alerts and the rule-check outbox

Revision ID: 0005_quality_loop
Revises: 0004_security
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from erp_api.db import BigIntId, JsonDocument, UTCDateTime

revision: str = "0005_quality_loop"
down_revision: str | None = "0004_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERT_STATUS_VALUES = ("open", "acknowledged", "action_proposed", "resolved", "dismissed")


def upgrade() -> None:
    with op.batch_alter_table("charge_status_changes") as batch:
        batch.add_column(sa.Column("actor_key_id", BigIntId, nullable=True))
        batch.add_column(sa.Column("actor_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("actor_role", sa.String(32), nullable=True))

    with op.batch_alter_table("quality_specs") as batch:
        batch.add_column(sa.Column("rules", sa.String(32), nullable=False, server_default="nelson"))
        batch.add_column(sa.Column("rule_ids", sa.String(128), nullable=True))
        batch.add_column(sa.Column("auto_hold", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("voided_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("void_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("voided_by", sa.String(100), nullable=True))

    op.create_table(
        "control_limits",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("center", sa.Double(), nullable=False),
        sa.Column("sigma", sa.Double(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("basis", JsonDocument, nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_control_limits"),
        sa.CheckConstraint("sigma > 0", name="ck_control_limits_sigma_positive"),
        sa.CheckConstraint("source IN ('manual', 'computed')", name="ck_control_limits_source_known"),
    )
    op.create_index(
        "ix_control_limits_product_sku_parameter_id", "control_limits", ["product_sku", "parameter", "id"]
    )

    op.create_table(
        "quality_alerts",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("charge_id", BigIntId, nullable=False),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(8), nullable=False),
        sa.Column("measurement_id", BigIntId, nullable=False),
        sa.Column("measurement_ids", JsonDocument, nullable=False),
        sa.Column("limits_id", BigIntId, nullable=True),
        sa.Column("center", sa.Double(), nullable=False),
        sa.Column("sigma", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quality_alerts"),
        sa.ForeignKeyConstraint(
            ["charge_id"], ["charges.id"], name="fk_quality_alerts_charge_id_charges"
        ),
        sa.UniqueConstraint("rule", "measurement_id", name="uq_quality_alerts_rule_measurement_id"),
        sa.CheckConstraint(f"status IN {ALERT_STATUS_VALUES!r}", name="ck_quality_alerts_status_known"),
    )
    op.create_index("ix_quality_alerts_status_id", "quality_alerts", ["status", "id"])
    op.create_index("ix_quality_alerts_charge_id_status", "quality_alerts", ["charge_id", "status"])
    op.create_index(
        "ix_quality_alerts_product_sku_parameter_id", "quality_alerts", ["product_sku", "parameter", "id"]
    )

    op.create_table(
        "rule_checks",
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("product_sku", sa.String(64), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("first_measurement_id", BigIntId, nullable=False),
        sa.Column("measurements", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_checks"),
    )
    op.create_index("ix_rule_checks_created_at", "rule_checks", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_rule_checks_created_at", table_name="rule_checks")
    op.drop_table("rule_checks")
    op.drop_index("ix_quality_alerts_product_sku_parameter_id", table_name="quality_alerts")
    op.drop_index("ix_quality_alerts_charge_id_status", table_name="quality_alerts")
    op.drop_index("ix_quality_alerts_status_id", table_name="quality_alerts")
    op.drop_table("quality_alerts")
    op.drop_index("ix_control_limits_product_sku_parameter_id", table_name="control_limits")
    op.drop_table("control_limits")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("voided_by")
        batch.drop_column("void_reason")
        batch.drop_column("voided_at")
    with op.batch_alter_table("quality_specs") as batch:
        batch.drop_column("auto_hold")
        batch.drop_column("rule_ids")
        batch.drop_column("rules")
    with op.batch_alter_table("charge_status_changes") as batch:
        batch.drop_column("actor_role")
        batch.drop_column("actor_name")
        batch.drop_column("actor_key_id")
