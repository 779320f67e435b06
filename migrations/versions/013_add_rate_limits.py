"""add rate limits shared by every ingress replica

One row per limited key (an API key, a source address that failed authentication): its GCRA
theoretical arrival time in epoch seconds (engine/core/rate_limit.py), moved by one atomic
UPSERT per check.

Revision ID: 013
Revises: 012
"""

import sqlalchemy as sa
from alembic import op

revision = "013"
down_revision = "012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tat_s", sa.Float(precision=53), nullable=False),
    )
    op.create_index("ix_rate_limits_tat_s", "rate_limits", ["tat_s"])


def downgrade() -> None:
    op.drop_index("ix_rate_limits_tat_s", table_name="rate_limits")
    op.drop_table("rate_limits")
