"""add knowledge chunks (full-text searchable) and the needs-a-human hand-off

Revision ID: 011
Revises: 010

`tsv` is `to_tsvector('portuguese', …)` of the chunk's text with accents already folded by
Conversa (customers type "preco" for "preço"); folding in Python rather than with the `unaccent`
extension works on every server, the embedded PostgreSQL included, which does not ship it.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "011"
down_revision = "010"
branch_labels = None
depends_on = None

_CLIENTE_COLUMNS = (
    ("relevance_min_score", sa.Float()),
    ("dont_know_message", sa.Text()),
    ("handoff_webhook_url", sa.String(500)),
    ("handoff_whatsapp", sa.String(32)),
)


def upgrade() -> None:
    op.create_table(
        "knowledge_chunks",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(300), nullable=False, server_default=""),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("lexemes", sa.Integer(), sa.Computed("length(tsv)", persisted=True)),
        sa.Column("embedded", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_chunks"),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            ondelete="CASCADE",
            name="fk_knowledge_chunks_cliente_id_clientes",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            ondelete="CASCADE",
            name="fk_knowledge_chunks_document_id_knowledge_documents",
        ),
        sa.UniqueConstraint(
            "document_id", "chunk_index", name="uq_knowledge_chunks_document_id_chunk_index"
        ),
    )
    op.create_index("ix_knowledge_chunks_cliente_id", "knowledge_chunks", ["cliente_id"])
    op.create_index("ix_knowledge_chunks_tsv", "knowledge_chunks", ["tsv"], postgresql_using="gin")
    op.add_column("conversations", sa.Column("needs_human_since", sa.DateTime(timezone=True)))
    op.add_column("conversations", sa.Column("needs_human_reason", sa.String(40)))
    op.create_index(
        "ix_conversations_needs_human_since",
        "conversations",
        ["cliente_id", "needs_human_since"],
        postgresql_where=sa.text("needs_human_since IS NOT NULL"),
    )
    op.add_column(
        "knowledge_documents",
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
    )
    for name, type_ in _CLIENTE_COLUMNS:
        op.add_column("clientes", sa.Column(name, type_))


def downgrade() -> None:
    for name, _ in _CLIENTE_COLUMNS:
        op.drop_column("clientes", name)
    op.drop_column("knowledge_documents", "attempts")
    op.drop_index("ix_conversations_needs_human_since", "conversations")
    op.drop_column("conversations", "needs_human_reason")
    op.drop_column("conversations", "needs_human_since")
    op.drop_table("knowledge_chunks")
