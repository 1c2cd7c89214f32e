"""daily summary: a channel setting that turns on the after-close risk summary

Revision ID: 0010
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL inherits (channel, then workspace, then off), like the other channel settings
    op.add_column("channel_settings", sa.Column("daily_summary", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_settings") as batch:
        batch.drop_column("daily_summary")
