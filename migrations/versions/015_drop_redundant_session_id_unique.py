"""drop the unique constraint on conversations.session_id

`session_id` is `cliente_{cliente_id}_{chat_jid}`, written with those two columns every time
(created, re-keyed from a lid to a phone), and that format is one-to-one: its uniqueness is
`uq_conversations_cliente_id_chat_jid`'s. As a second unique constraint it broke the
conversation's upsert under concurrency: `ON CONFLICT (cliente_id, chat_jid)` covers only its own
constraint, so of a new chat's first messages arriving at once, the loser of the insert could hit
this one instead and fail the webhook (a 500). Nothing looks conversations up by session_id.

Revision ID: 015
Revises: 014
"""

from alembic import op

revision = "015"
down_revision = "014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("uq_conversations_session_id", "conversations", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_conversations_session_id", "conversations", ["session_id"])
