"""alerts: alerts, the delivery outbox, channel alert settings, tracked plans, runtime state

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column[int]:
    return sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _owner() -> sa.Column[int]:
    return sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        _owner(),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("reference", sa.Float(), nullable=True),
        sa.Column("band", sa.Float(), nullable=False),
        sa.Column("interval", sa.String(8), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=True),
        sa.Column("plan_id", sa.String(64), nullable=True),
        sa.Column("target_index", sa.Integer(), nullable=True),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("expires_at", ts, nullable=True),
        sa.Column("session", sa.String(12), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("armed_up", sa.Boolean(), nullable=True),
        sa.Column("armed_down", sa.Boolean(), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("last_fired_at", ts, nullable=True),
        sa.Column("last_price", sa.Float(), nullable=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("user_ref", sa.String(64), nullable=False),
        sa.Column("active_from", ts, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    op.create_index("ix_alerts_tenant_id", "alerts", ["tenant_id"])
    op.create_index("ix_alerts_owner_id", "alerts", ["owner_id"])
    op.create_index("ix_alerts_status_updated", "alerts", ["status", "updated_at"])
    op.create_index("ix_alerts_owner_status", "alerts", ["tenant_id", "owner_id", "status"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("channel_key", sa.String(540), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("event_at", ts, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("delivered_at", ts, nullable=True),
        sa.UniqueConstraint("key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_status_channel", "outbox", ["status", "channel_key"])
    op.create_index("ix_outbox_tenant_status", "outbox", ["tenant_id", "status"])

    op.create_table(
        "channel_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("scope", sa.String(12), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("alerts_enabled", sa.Boolean(), nullable=True),
        sa.Column("allowed_kinds", sa.JSON(), nullable=True),
        sa.Column("route", sa.String(12), nullable=True),
        sa.Column("webhooks", sa.JSON(), nullable=True),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.UniqueConstraint("tenant_id", "scope", "channel", name="uq_channel_settings_scope"),
    )
    op.create_index("ix_channel_settings_tenant_id", "channel_settings", ["tenant_id"])

    op.create_table(
        "tracked_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        _owner(),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("style", sa.String(12), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("user_ref", sa.String(64), nullable=False),
        sa.Column("replan_status", sa.String(12), nullable=True),
        sa.Column("replan_of", sa.Integer(), nullable=True),
        sa.Column("next_plan_id", sa.String(64), nullable=True),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
        sa.UniqueConstraint("owner_id", "plan_id", name="uq_tracked_plans_owner_plan"),
    )
    op.create_index("ix_tracked_plans_tenant_id", "tracked_plans", ["tenant_id"])
    op.create_index("ix_tracked_plans_owner_id", "tracked_plans", ["owner_id"])
    op.create_index("ix_tracked_plans_status", "tracked_plans", ["status"])

    op.create_table(
        "runtime_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("runtime_state")
    op.drop_table("tracked_plans")
    op.drop_table("channel_settings")
    op.drop_table("outbox")
    op.drop_table("alerts")
