"""add instancias whatsapp table

Revision ID: 003
Revises: 002
"""

import sqlalchemy as sa
from alembic import op

revision = "003"
down_revision = "002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instancias_whatsapp",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(100), nullable=False),
        sa.Column("numero", sa.String(32)),
        sa.Column("qr_code", sa.Text()),
        sa.Column(
            "status",
            sa.Enum(
                "PENDENTE",
                "CONECTADA",
                "DESCONECTADA",
                "ERRO",
                name="instancia_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("webhook_secret_sha256", sa.String(64), nullable=False),
        sa.Column("api_key", sa.String(200)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_instancias_whatsapp"),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            ondelete="CASCADE",
            name="fk_instancias_whatsapp_cliente_id_clientes",
        ),
        sa.UniqueConstraint("instance_id", name="uq_instancias_whatsapp_instance_id"),
    )
    # Webhook lookup is by instance_id (unique above), falling back to numero.
    op.create_index("ix_instancias_whatsapp_numero", "instancias_whatsapp", ["numero"])
    op.create_index(
        "ix_instancias_whatsapp_cliente_id_status", "instancias_whatsapp", ["cliente_id", "status"]
    )


def downgrade() -> None:
    op.drop_table("instancias_whatsapp")
