"""add conversations, turns and messages

Revision ID: 004
Revises: 003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "004"
down_revision = "003"
branch_labels = None
depends_on = None


def _created(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _status(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("instancia_id", sa.Integer()),
        sa.Column("chat_jid", sa.String(120), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("push_name", sa.String(200)),
        _created("last_message_at"),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            ondelete="CASCADE",
            name="fk_conversations_cliente_id_clientes",
        ),
        sa.ForeignKeyConstraint(
            ["instancia_id"],
            ["instancias_whatsapp.id"],
            ondelete="SET NULL",
            name="fk_conversations_instancia_id_instancias_whatsapp",
        ),
        sa.UniqueConstraint("cliente_id", "chat_jid", name="uq_conversations_cliente_id_chat_jid"),
        sa.UniqueConstraint("session_id", name="uq_conversations_session_id"),
    )
    op.create_index("ix_conversations_cliente_id", "conversations", ["cliente_id"])

    op.create_table(
        "turns",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column(
            "status", _status("turn_status", "PROCESSANDO", "RESPONDIDA", "FALHOU"), nullable=False
        ),
        sa.Column("user_text", sa.Text(), nullable=False),
        sa.Column("reply_text", sa.Text()),
        sa.Column("reply_kind", sa.String(20)),
        sa.Column("sources", postgresql.JSONB()),
        _created("created_at"),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_turns"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            ondelete="CASCADE",
            name="fk_turns_conversation_id_conversations",
        ),
        sa.ForeignKeyConstraint(
            ["cliente_id"], ["clientes.id"], ondelete="CASCADE", name="fk_turns_cliente_id_clientes"
        ),
    )
    op.create_index("ix_turns_conversation_id", "turns", ["conversation_id"])
    op.create_index("ix_turns_cliente_id", "turns", ["cliente_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.BigInteger()),
        sa.Column("direction", _status("direction", "inbound", "outbound"), nullable=False),
        sa.Column("author", _status("author", "customer", "bot", "human"), nullable=False),
        sa.Column(
            "status",
            _status(
                "message_status",
                "RECEBIDA",
                "RESPONDIDA",
                "IGNORADA",
                "ENVIADA",
                "REGISTRADA",
                "FALHOU",
            ),
            nullable=False,
        ),
        sa.Column("instance_id", sa.String(100), nullable=False),
        sa.Column("wa_message_id", sa.String(100)),
        sa.Column("message_type", sa.String(60)),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ignored_reason", sa.String(80)),
        sa.Column("error", sa.Text()),
        sa.Column("wa_timestamp", sa.BigInteger()),
        _created("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            ondelete="CASCADE",
            name="fk_messages_conversation_id_conversations",
        ),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            ondelete="CASCADE",
            name="fk_messages_cliente_id_clientes",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"], ["turns.id"], ondelete="SET NULL", name="fk_messages_turn_id_turns"
        ),
        sa.UniqueConstraint(
            "instance_id", "wa_message_id", name="uq_messages_instance_id_wa_message_id"
        ),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])
    op.create_index("ix_messages_cliente_id", "messages", ["cliente_id"])
    op.create_index("ix_messages_turn_id", "messages", ["turn_id"])
    op.create_index(
        "ix_messages_pending",
        "messages",
        ["conversation_id"],
        postgresql_where=sa.text("status = 'RECEBIDA'"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("turns")
    op.drop_table("conversations")
