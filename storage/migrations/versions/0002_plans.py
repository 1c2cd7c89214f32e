"""plans made by /plan, /scan and re-plans

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("plan_id", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("style", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "owner_id", "plan_id", name="uq_plans_tenant_owner_plan"),
    )
    op.create_index("ix_plans_tenant_id", "plans", ["tenant_id"])
    op.create_index("ix_plans_owner_id", "plans", ["owner_id"])
    op.create_index("ix_plans_plan_id", "plans", ["plan_id"])
    op.create_index("ix_plans_owner_symbol_style", "plans", ["owner_id", "symbol", "style", "version"])


def downgrade() -> None:
    op.drop_table("plans")
