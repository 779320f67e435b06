"""add an index for what operators watch: recent failures

`conversa status` lists the last hour's dead-lettered sends, a tiny subset of `messages`, so a
partial index keeps it cheap however large the table grows (the sends-owed gauge uses the owed
parts' index of migration 008).

Revision ID: 012
Revises: 011
"""

import sqlalchemy as sa
from alembic import op

revision = "012"
down_revision = "011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_failed",
        "messages",
        ["created_at"],
        postgresql_where=sa.text("status = 'FALHOU'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_failed", table_name="messages")
