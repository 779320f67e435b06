"""add cliente behaviour settings and Stripe billing columns

Revision ID: 002
Revises: 001
"""

import sqlalchemy as sa
from alembic import op

revision = "002"
down_revision = "001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clientes", sa.Column("system_prompt", sa.Text()))
    op.add_column("clientes", sa.Column("debounce_s", sa.Float()))
    op.add_column("clientes", sa.Column("max_wait_s", sa.Float()))
    op.add_column("clientes", sa.Column("stripe_customer_id", sa.String(100)))
    op.add_column("clientes", sa.Column("stripe_subscription_id", sa.String(100)))
    op.add_column("clientes", sa.Column("subscription_status", sa.String(40)))
    op.add_column("clientes", sa.Column("subscription_updated_at", sa.DateTime(timezone=True)))
    op.create_unique_constraint(
        "uq_clientes_stripe_customer_id", "clientes", ["stripe_customer_id"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_clientes_stripe_customer_id", "clientes", type_="unique")
    for column in (
        "subscription_updated_at",
        "subscription_status",
        "stripe_subscription_id",
        "stripe_customer_id",
        "max_wait_s",
        "debounce_s",
        "system_prompt",
    ):
        op.drop_column("clientes", column)
