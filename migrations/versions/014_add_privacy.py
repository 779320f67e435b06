"""add LGPD bookkeeping: an audit log of erasures and deletions, and each cliente's identity

`audit_log` rows outlive what they describe (a deleted cliente's row is gone, its audit record
stays), so `cliente_id` is a plain column, not a foreign key; they name the contact only masked.
`clientes.uuid` is an identity a database reset cannot hand to a new cliente with the same id:
the Chroma collection records it, and refuses to serve vectors made for another uuid.

Revision ID: 014
Revises: 013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "014"
down_revision = "013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(120)),
        sa.Column("detail", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_cliente_id_at", "audit_log", ["cliente_id", "at"])
    op.add_column(
        "clientes",
        sa.Column(
            "uuid",
            postgresql.UUID(as_uuid=True),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
    )
    op.create_unique_constraint("uq_clientes_uuid", "clientes", ["uuid"])


def downgrade() -> None:
    op.drop_constraint("uq_clientes_uuid", "clientes", type_="unique")
    op.drop_column("clientes", "uuid")
    op.drop_index("ix_audit_log_cliente_id_at", table_name="audit_log")
    op.drop_table("audit_log")
