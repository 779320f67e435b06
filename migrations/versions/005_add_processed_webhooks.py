"""add processed webhooks (idempotency keys)

Revision ID: 005
Revises: 004
"""

import sqlalchemy as sa
from alembic import op

revision = "005"
down_revision = "004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processed_webhooks",
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(80), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("source", "key", name="pk_processed_webhooks"),
    )
    # Old keys can be pruned by age once Evolution/Stripe have stopped retrying them.
    op.create_index("ix_processed_webhooks_received_at", "processed_webhooks", ["received_at"])


def downgrade() -> None:
    op.drop_table("processed_webhooks")
