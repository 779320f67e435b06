"""add indexes for what operators watch: sends owed, recent failures

The sends-owed gauge counts reply parts still ENVIANDO on every recovery pass, and
`conversa status` lists the last hour's failed sends; both are tiny subsets of `messages`,
so partial indexes keep them cheap however large the table grows.

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
        "ix_messages_sends_owed",
        "messages",
        ["conversation_id"],
        postgresql_where=sa.text("status = 'ENVIANDO'"),
    )
    op.create_index(
        "ix_messages_failed",
        "messages",
        ["created_at"],
        postgresql_where=sa.text("status = 'FALHOU'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_failed", table_name="messages")
    op.drop_index("ix_messages_sends_owed", table_name="messages")
