"""odds fits: calibrations of plan odds (chance of T1 before the stop), shared market data

Revision ID: 0011
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "odds_fits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(400), nullable=False),
        sa.Column("fit", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_odds_fits_fitted_at", "odds_fits", ["fitted_at"])


def downgrade() -> None:
    op.drop_index("ix_odds_fits_fitted_at", table_name="odds_fits")
    op.drop_table("odds_fits")
