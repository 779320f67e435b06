"""add conversation lifecycle: durable deadlines, pause, sessions, per-cliente behaviour

Revision ID: 007
Revises: 006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "007"
down_revision = "006"
branch_labels = None
depends_on = None

_TIMESTAMPS = ("answer_due_at", "paused_until", "session_started_at", "out_of_office_sent_at")
_CLIENTE_COLUMNS = (
    ("human_pause_s", sa.Float()),
    ("session_expire_s", sa.Float()),
    ("finish_keyword", sa.String(40)),
    ("finish_message", sa.Text()),
    ("media_unsupported_message", sa.Text()),
    ("out_of_office_message", sa.Text()),
    ("business_hours", postgresql.JSONB()),
)


def upgrade() -> None:
    for name, type_ in _CLIENTE_COLUMNS:
        op.add_column("clientes", sa.Column(name, type_))
    op.add_column(
        "clientes",
        sa.Column(
            "group_replies",
            sa.Enum("off", "mentioned", name="group_replies", native_enum=False, length=20),
            server_default="off",
            nullable=False,
        ),
    )
    for name in _TIMESTAMPS:
        op.add_column("conversations", sa.Column(name, sa.DateTime(timezone=True)))
    op.add_column("conversations", sa.Column("paused_by", sa.String(20)))
    op.create_index(
        "ix_conversations_answer_due_at",
        "conversations",
        ["answer_due_at"],
        postgresql_where=sa.text("answer_due_at IS NOT NULL"),
    )
    # New statuses (ENVIANDO, ABANDONADA) widen VARCHAR enums: no DDL needed beyond the models.


def downgrade() -> None:
    op.drop_index("ix_conversations_answer_due_at", "conversations")
    op.drop_column("conversations", "paused_by")
    for name in _TIMESTAMPS:
        op.drop_column("conversations", name)
    op.drop_column("clientes", "group_replies")
    for name, _ in _CLIENTE_COLUMNS:
        op.drop_column("clientes", name)
