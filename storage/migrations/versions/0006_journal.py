"""journal entries and plan outcomes

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column[int]]:
    return [
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_owned(),
        sa.Column("symbol", sa.String(16), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("screenshot", sa.LargeBinary(), nullable=True),
        sa.Column("has_screenshot", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_journal_entries_tenant_id", "journal_entries", ["tenant_id"])
    op.create_index("ix_journal_entries_owner_id", "journal_entries", ["owner_id"])
    op.create_index("ix_journal_entries_owner_created", "journal_entries", ["tenant_id", "owner_id", "created_at"])
    op.create_index("ix_journal_entries_owner_plan", "journal_entries", ["tenant_id", "owner_id", "plan_id"])

    op.create_table(
        "plan_outcomes",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_owned(),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(48), nullable=False),
        sa.Column("style", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hit_t1", sa.Boolean(), nullable=True),
        sa.Column("targets_hit", sa.Integer(), nullable=False),
        sa.Column("r_multiple", sa.Float(), nullable=True),
        sa.Column("mae_r", sa.Float(), nullable=True),
        sa.Column("mfe_r", sa.Float(), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_in_trade_s", sa.Float(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "owner_id", "plan_id", "version", name="uq_plan_outcomes_owner_plan_version"),
    )
    op.create_index("ix_plan_outcomes_tenant_id", "plan_outcomes", ["tenant_id"])
    op.create_index("ix_plan_outcomes_owner_id", "plan_outcomes", ["owner_id"])
    op.create_index("ix_plan_outcomes_owner_strategy", "plan_outcomes", ["tenant_id", "owner_id", "strategy"])


def downgrade() -> None:
    op.drop_table("plan_outcomes")
    op.drop_table("journal_entries")
