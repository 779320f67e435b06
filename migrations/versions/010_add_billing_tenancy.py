"""add billing and tenancy: API keys, provisioned instances with sealed tokens, grace clock,
tokens per turn, history by date

Revision ID: 010
Revises: 009

Instance tokens already stored in plain text (`instancias_whatsapp.api_key`) are sealed with
SECRETS_KEY into `api_key_encrypted` (and opened back on downgrade). The key comes from the
caller (`engine.db.migrate.upgrade(url, secrets_key=…)`), else from Settings.
"""

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet

revision = "010"
down_revision = "009"
branch_labels = None
depends_on = None


def _fernet() -> Fernet:
    key = op.get_context().config.attributes.get("secrets_key")
    if key is None:
        from engine.config import Settings

        key = Settings().secrets_key.get_secret_value()
    return Fernet(key)


def upgrade() -> None:
    op.add_column("clientes", sa.Column("past_due_since", sa.DateTime(timezone=True)))
    op.add_column("clientes", sa.Column("trial_ends_at", sa.DateTime(timezone=True)))

    op.add_column("instancias_whatsapp", sa.Column("api_key_encrypted", sa.Text()))
    op.add_column("instancias_whatsapp", sa.Column("pairing_code", sa.String(16)))
    op.add_column(
        "instancias_whatsapp",
        sa.Column("provisioned", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("instancias_whatsapp", sa.Column("previous_secret_sha256", sa.String(64)))
    # A webhook signed with a rotated-out secret is found by it during the overlap (see 009).
    op.create_index(
        "ix_instancias_whatsapp_previous_secret_sha256",
        "instancias_whatsapp",
        ["previous_secret_sha256"],
    )
    op.add_column("instancias_whatsapp", sa.Column("secret_rotated_at", sa.DateTime(timezone=True)))
    connection = op.get_bind()
    fernet = _fernet()
    plain = connection.execute(
        sa.text("SELECT id, api_key FROM instancias_whatsapp WHERE api_key IS NOT NULL")
    ).all()
    for row in plain:
        connection.execute(
            sa.text("UPDATE instancias_whatsapp SET api_key_encrypted = :sealed WHERE id = :id"),
            {"sealed": fernet.encrypt(row.api_key.encode()).decode(), "id": row.id},
        )
    op.drop_column("instancias_whatsapp", "api_key")

    op.add_column("turns", sa.Column("prompt_tokens", sa.Integer()))
    op.add_column("turns", sa.Column("completion_tokens", sa.Integer()))
    op.create_index("ix_messages_cliente_id_created_at", "messages", ["cliente_id", "created_at"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cliente_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(20), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["cliente_id"],
            ["clientes.id"],
            ondelete="CASCADE",
            name="fk_api_keys_cliente_id_clientes",
        ),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_index("ix_api_keys_cliente_id", "api_keys", ["cliente_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_messages_cliente_id_created_at", "messages")
    op.drop_column("turns", "completion_tokens")
    op.drop_column("turns", "prompt_tokens")

    op.add_column("instancias_whatsapp", sa.Column("api_key", sa.String(200)))
    connection = op.get_bind()
    fernet = _fernet()
    sealed = connection.execute(
        sa.text(
            "SELECT id, api_key_encrypted FROM instancias_whatsapp "
            "WHERE api_key_encrypted IS NOT NULL"
        )
    ).all()
    for row in sealed:
        connection.execute(
            sa.text("UPDATE instancias_whatsapp SET api_key = :plain WHERE id = :id"),
            {"plain": fernet.decrypt(row.api_key_encrypted.encode()).decode(), "id": row.id},
        )
    op.drop_index("ix_instancias_whatsapp_previous_secret_sha256", "instancias_whatsapp")
    for column in (
        "secret_rotated_at",
        "previous_secret_sha256",
        "provisioned",
        "pairing_code",
        "api_key_encrypted",
    ):
        op.drop_column("instancias_whatsapp", column)
    op.drop_column("clientes", "trial_ends_at")
    op.drop_column("clientes", "past_due_since")
