"""add rate limits shared by every ingress replica, and a cliente's own chat limits

`rate_limits`: one row per limited key (an API key, a source address that failed
authentication): its GCRA theoretical arrival time in epoch seconds (engine/core/rate_limit.py),
moved by one atomic UPSERT per check. `clientes.chat_max_messages` and
`clientes.llm_daily_tokens`: the operator's per-cliente overrides of CHAT_MAX_MESSAGES and
LLM_DAILY_TOKENS (engine/core/chat_limits.py).

Revision ID: 013
Revises: 012
"""

import sqlalchemy as sa
from alembic import op

revision = "013"
down_revision = "012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tat_s", sa.Float(precision=53), nullable=False),
    )
    op.create_index("ix_rate_limits_tat_s", "rate_limits", ["tat_s"])
    op.add_column("clientes", sa.Column("chat_max_messages", sa.Integer()))
    op.add_column("clientes", sa.Column("llm_daily_tokens", sa.Integer()))


def downgrade() -> None:
    op.drop_column("clientes", "llm_daily_tokens")
    op.drop_column("clientes", "chat_max_messages")
    op.drop_index("ix_rate_limits_tat_s", table_name="rate_limits")
    op.drop_table("rate_limits")
