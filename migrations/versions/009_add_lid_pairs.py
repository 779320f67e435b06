"""add lid_pairs (one conversation per contact, lid or phone) and index webhook secrets

Revision ID: 009
Revises: 008
"""

import sqlalchemy as sa
from alembic import op

revision = "009"
down_revision = "008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lid_pairs",
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("lid_jid", sa.String(120), nullable=False),
        sa.Column("phone_jid", sa.String(120), nullable=False),
        sa.Column("instancia_id", sa.Integer(), nullable=True),
        sa.Column(
            "learned_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            name="fk_lid_pairs_cliente_id_clientes",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instancia_id"],
            ["instancias_whatsapp.id"],
            name="fk_lid_pairs_instancia_id_instancias_whatsapp",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("cliente_id", "lid_jid", name="pk_lid_pairs"),
    )
    op.create_index(
        "ix_instancias_whatsapp_webhook_secret_sha256",
        "instancias_whatsapp",
        ["webhook_secret_sha256"],
    )


def downgrade() -> None:
    op.drop_index("ix_instancias_whatsapp_webhook_secret_sha256", "instancias_whatsapp")
    op.drop_table("lid_pairs")
