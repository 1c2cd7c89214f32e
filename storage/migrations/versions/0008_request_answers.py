"""request answers: which jobs have been answered

Revision ID: 0008
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_answers",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("worker", sa.String(96), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_request_answers_claimed_at", "request_answers", ["claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_request_answers_claimed_at", "request_answers")
    op.drop_table("request_answers")
