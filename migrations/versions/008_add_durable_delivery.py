"""add durable delivery (attempts, next attempt, owed since) and turn leases

Revision ID: 008
Revises: 007
"""

import sqlalchemy as sa
from alembic import op

revision = "008"
down_revision = "007"
branch_labels = None
depends_on = None

OWED_WHERE = "status IN ('ENVIANDO', 'INCERTA', 'PENDENTE')"


def upgrade() -> None:
    op.add_column("turns", sa.Column("lease_owner", sa.String(80)))
    op.add_column("turns", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    for name in ("attempts", "unconfirmed"):
        op.add_column("messages", sa.Column(name, sa.Integer(), server_default="0", nullable=False))
    for name in ("next_attempt_at", "last_attempt_at", "owed_since"):
        op.add_column("messages", sa.Column(name, sa.DateTime(timezone=True)))
    # Parts left ENVIANDO by the old code were never confirmed: they are owed, due now.
    op.execute(
        "UPDATE messages SET status = 'PENDENTE', next_attempt_at = now(), "
        "owed_since = created_at WHERE direction = 'outbound' AND status = 'ENVIANDO'"
    )
    op.create_index(
        "ix_messages_owed",
        "messages",
        ["conversation_id", "next_attempt_at"],
        postgresql_where=sa.text(OWED_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_owed", "messages")
    # The old code knows owed parts only as ENVIANDO (resent by recovery).
    op.execute(
        "UPDATE messages SET status = 'ENVIANDO' "
        "WHERE direction = 'outbound' AND status IN ('PENDENTE', 'INCERTA')"
    )
    for name in ("owed_since", "last_attempt_at", "next_attempt_at", "unconfirmed", "attempts"):
        op.drop_column("messages", name)
    op.drop_column("turns", "lease_expires_at")
    op.drop_column("turns", "lease_owner")
