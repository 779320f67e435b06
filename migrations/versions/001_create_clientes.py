"""create clientes

Revision ID: 001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clientes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nome", sa.String(200), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDENTE",
                "ATIVO",
                "INADIMPLENTE",
                "SUSPENSO",
                "CANCELADO",
                name="cliente_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_clientes"),
    )
    op.create_index("ix_clientes_status", "clientes", ["status"])


def downgrade() -> None:
    op.drop_table("clientes")
