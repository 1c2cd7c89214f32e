"""orders and fills

Revision ID: 0007
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
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
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_owned(),
        sa.Column("preview_id", sa.String(16), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("account", sa.String(32), nullable=True),
        sa.Column("broker_order_id", sa.String(64), nullable=True),
        sa.Column("asset_class", sa.String(8), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("option_symbol", sa.String(32), nullable=True),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("duration", sa.String(8), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("avg_fill_price", sa.Float(), nullable=True),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("plan_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("preview_id", name="uq_orders_preview_id"),
    )
    op.create_index("ix_orders_tenant_id", "orders", ["tenant_id"])
    op.create_index("ix_orders_owner_id", "orders", ["owner_id"])
    op.create_index("ix_orders_owner_created", "orders", ["tenant_id", "owner_id", "created_at"])
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_owned(),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("broker_fill_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fills_tenant_id", "fills", ["tenant_id"])
    op.create_index("ix_fills_owner_id", "fills", ["owner_id"])
    op.create_index("ix_fills_order_id", "fills", ["order_id"])


def downgrade() -> None:
    op.drop_table("fills")
    op.drop_table("orders")
