"""pending removals: bulk removals waiting for their owner's confirmation

Revision ID: 0009
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_removals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token", name="uq_pending_removals_token"),
    )
    op.create_index("ix_pending_removals_tenant_id", "pending_removals", ["tenant_id"])
    op.create_index("ix_pending_removals_owner_id", "pending_removals", ["owner_id"])
    op.create_index("ix_pending_removals_owner_expires", "pending_removals", ["tenant_id", "owner_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_removals_owner_expires", "pending_removals")
    op.drop_index("ix_pending_removals_owner_id", "pending_removals")
    op.drop_index("ix_pending_removals_tenant_id", "pending_removals")
    op.drop_table("pending_removals")
