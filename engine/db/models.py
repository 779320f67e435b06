"""PostgreSQL schema (SQLAlchemy 2 models). Alembic revisions in migrations/ must match these.

Naming rule: the persisted domain names the original system used stay in Portuguese (`Cliente`,
`InstanciaWhatsApp`, table `instancias_whatsapp`, the statuses in `engine.core.statuses`);
everything else is English. `instance_id` is the Evolution instance *name* (the seed's field);
`instancia_id` is the integer key of an `instancias_whatsapp` row. The ORM `Turn` is a persisted
answered burst; one exchange of a conversation's memory is `engine.core.prompt.Exchange`.

Every row that belongs to a tenant carries `cliente_id`, so every query can be (and is) keyed by
cliente.
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.core.statuses import (
    OWED_STATUSES,
    Author,
    ClienteStatus,
    Direction,
    DocumentStatus,
    GroupReplies,
    InstanciaStatus,
    MessageStatus,
    TurnStatus,
)

OWED_WHERE = "status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(OWED_STATUSES)))
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # VARCHAR, not a native PG enum: adding a status later is a code change, not an ALTER TYPE.
    return Enum(cls, name=name, native_enum=False, length=20, values_callable=_values)


def _values(cls: type[StrEnum]) -> list[str]:
    return [member.value for member in cls]


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Cliente(Base):
    """A business (tenant) that Conversa answers for."""

    __tablename__ = "clientes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nome: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[ClienteStatus] = mapped_column(
        _enum(ClienteStatus, "cliente_status"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # 002: behaviour and billing
    system_prompt: Mapped[str | None] = mapped_column(Text)
    debounce_s: Mapped[float | None] = mapped_column(Float)
    max_wait_s: Mapped[float | None] = mapped_column(Float)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(100))
    subscription_status: Mapped[str | None] = mapped_column(String(40))
    subscription_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 007: conversation lifecycle (None = the global default)
    human_pause_s: Mapped[float | None] = mapped_column(Float)
    session_expire_s: Mapped[float | None] = mapped_column(Float)
    finish_keyword: Mapped[str | None] = mapped_column(String(40))
    finish_message: Mapped[str | None] = mapped_column(Text)
    media_unsupported_message: Mapped[str | None] = mapped_column(Text)
    out_of_office_message: Mapped[str | None] = mapped_column(Text)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    group_replies: Mapped[GroupReplies] = mapped_column(
        _enum(GroupReplies, "group_replies"), nullable=False, server_default=GroupReplies.OFF.value
    )
    # 011: "I don't know" and where the business is told a chat needs a human
    relevance_min_score: Mapped[float | None] = mapped_column(Float)
    dont_know_message: Mapped[str | None] = mapped_column(Text)
    handoff_webhook_url: Mapped[str | None] = mapped_column(String(500))
    handoff_whatsapp: Mapped[str | None] = mapped_column(String(32))
    # 013: what one chat may cost (operator-set)
    chat_max_messages: Mapped[int | None] = mapped_column(Integer)
    llm_daily_tokens: Mapped[int | None] = mapped_column(Integer)
    # 010: billing clock
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trial_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 014: an identity a database reset never hands to a new cliente with the same id (its
    # Chroma collection records it; a collection made for another uuid is not served)
    uuid: Mapped[uuid_module.UUID] = mapped_column(
        UUID(as_uuid=True), nullable=False, unique=True, server_default=text("gen_random_uuid()")
    )


class InstanciaWhatsApp(Base):
    """An Evolution API instance (one WhatsApp number) connected to a cliente."""

    __tablename__ = "instancias_whatsapp"
    __table_args__ = (Index(None, "cliente_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False
    )
    instance_id: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    numero: Mapped[str | None] = mapped_column(String(32), index=True)
    qr_code: Mapped[str | None] = mapped_column(Text)
    status: Mapped[InstanciaStatus] = mapped_column(
        _enum(InstanciaStatus, "instancia_status"), nullable=False
    )
    # 009: indexed, the webhook finds its instance by the secret's hash before reading the body
    webhook_secret_sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    # 010: provisioned by Conversa; the instance token (Evolution's `hash`) sealed with
    # SECRETS_KEY; the secret replaced by a rotation stays valid for a short overlap.
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    pairing_code: Mapped[str | None] = mapped_column(String(16))
    provisioned: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    previous_secret_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Conversation(Base):
    """One chat between a cliente and one of its customers."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("cliente_id", "chat_jid"),
        # What recovery scans: conversations whose burst should have been answered by now.
        Index(
            "ix_conversations_answer_due_at",
            "answer_due_at",
            postgresql_where=text("answer_due_at IS NOT NULL"),
        ),
        # The operator's queue: chats waiting for a human, oldest first.
        Index(
            "ix_conversations_needs_human_since",
            "cliente_id",
            "needs_human_since",
            postgresql_where=text("needs_human_since IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    instancia_id: Mapped[int | None] = mapped_column(
        ForeignKey("instancias_whatsapp.id", ondelete="SET NULL")
    )
    chat_jid: Mapped[str] = mapped_column(String(120), nullable=False)
    # `cliente_{id}_{chat_jid}`: unique through (cliente_id, chat_jid) (migration 015).
    session_id: Mapped[str] = mapped_column(String(200), nullable=False)
    push_name: Mapped[str | None] = mapped_column(String(200))
    last_message_at: Mapped[datetime] = _created()
    created_at: Mapped[datetime] = _created()
    # 007: durable lifecycle state (timers live in the actor; deadlines live here)
    answer_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_by: Mapped[str | None] = mapped_column(String(20))  # human | operator
    session_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    out_of_office_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 011: the bot could not answer and asked for a human; cleared when one answers or resumes
    needs_human_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    needs_human_reason: Mapped[str | None] = mapped_column(String(40))


class LidPair(Base):
    """A contact's LID and phone JID, as an instance of the cliente reported them (009).

    A conversation is keyed by the phone whenever it is known; an `@lid` message without a phone
    JID is keyed through this table.
    """

    __tablename__ = "lid_pairs"

    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), primary_key=True
    )
    lid_jid: Mapped[str] = mapped_column(String(120), primary_key=True)
    phone_jid: Mapped[str] = mapped_column(String(120), nullable=False)
    instancia_id: Mapped[int | None] = mapped_column(
        ForeignKey("instancias_whatsapp.id", ondelete="SET NULL")
    )
    learned_at: Mapped[datetime] = _created()


class Turn(Base):
    """A burst of customer messages answered as one, with the reply and the passages used."""

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[TurnStatus] = mapped_column(_enum(TurnStatus, "turn_status"), nullable=False)
    user_text: Mapped[str] = mapped_column(Text, nullable=False)
    reply_text: Mapped[str | None] = mapped_column(Text)
    reply_kind: Mapped[str | None] = mapped_column(String(20))  # llm | offline | fallback
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 010: what the model call cost (None: no model involved)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    # 008: who produces the reply, until when (renewed by a heartbeat); recovery takes over only
    # once it expired, and every change is a compare-and-set on the status and the owner.
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(Base):
    """Every WhatsApp message Conversa saw or sent in a private chat."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("instance_id", "wa_message_id"),
        # Unanswered inbound messages: what the conversation actor (and recovery) pick up.
        Index(
            "ix_messages_pending",
            "conversation_id",
            postgresql_where=text("status = 'RECEBIDA'"),
        ),
        # 010: a cliente's history by date (export, analytics)
        Index(None, "cliente_id", "created_at"),
        # 012: the failures operators watch in `conversa status`.
        Index("ix_messages_failed", "created_at", postgresql_where=text("status = 'FALHOU'")),
        # Owed reply parts: what the delivery loops scan (by due time) and order (per chat).
        Index(
            "ix_messages_owed",
            "conversation_id",
            "next_attempt_at",
            postgresql_where=text(OWED_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    turn_id: Mapped[int | None] = mapped_column(
        ForeignKey("turns.id", ondelete="SET NULL"), index=True
    )
    direction: Mapped[Direction] = mapped_column(_enum(Direction, "direction"), nullable=False)
    author: Mapped[Author] = mapped_column(_enum(Author, "author"), nullable=False)
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, "message_status"), nullable=False
    )
    instance_id: Mapped[str] = mapped_column(String(100), nullable=False)
    wa_message_id: Mapped[str | None] = mapped_column(String(100))
    message_type: Mapped[str | None] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    ignored_reason: Mapped[str | None] = mapped_column(String(80))
    error: Mapped[str | None] = mapped_column(Text)
    wa_timestamp: Mapped[int | None] = mapped_column(BigInteger)  # messageTimestamp, epoch s
    created_at: Mapped[datetime] = _created()
    # 008: durable delivery of an outbound part (engine.core.delivery)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unconfirmed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owed_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProcessedWebhook(Base):
    """Idempotency keys: (source, key) seen once. Evolution: (`evolution:{instance}`, key.id)."""

    __tablename__ = "processed_webhooks"

    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(80), nullable=False)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, index=True
    )


class RateLimit(Base):
    """A rate-limited key's GCRA theoretical arrival time, in epoch seconds (PostgreSQL's clock),
    shared by every ingress replica (engine/core/rate_limit.py)."""

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat_s: Mapped[float] = mapped_column(Float(precision=53), nullable=False, index=True)


class KnowledgeDocument(Base):
    """A document a cliente uploaded, converted to Markdown; its chunks are `KnowledgeChunk`s
    (their vectors in Chroma collection `tenant_{id}`)."""

    __tablename__ = "knowledge_documents"
    __table_args__ = (UniqueConstraint("cliente_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[DocumentStatus] = mapped_column(
        _enum(DocumentStatus, "document_status"), nullable=False
    )
    chunks_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    chunks_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    # 011: ingestion runs started (a retriever that dies mid-way resumes; too many = ERRO)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class KnowledgeChunk(Base):
    """One retrieval chunk of a document: the lexical side searches `tsv` (Portuguese stemming
    of the accent-folded text), the dense side finds its vector in Chroma under id `chunk{id}`.
    A chunk is served only while its row exists and its document is PRONTO: PostgreSQL decides
    what is knowledge, so a vector left behind in Chroma is never served."""

    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        UniqueConstraint("document_id", "chunk_index"),
        Index("ix_knowledge_chunks_tsv", "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"), nullable=False
    )
    chunk_index: Mapped[int] = mapped_column(Integer, nullable=False)
    section: Mapped[str] = mapped_column(String(300), nullable=False, server_default="")
    text: Mapped[str] = mapped_column(Text, nullable=False)
    tsv: Mapped[Any] = mapped_column(TSVECTOR, nullable=False)
    # BM25's document length, kept so ranking never unpacks every tsvector
    lexemes: Mapped[int] = mapped_column(Integer, Computed("length(tsv)", persisted=True))
    embedded: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class ApiKey(Base):
    """A key a cliente's programs (and the console) use on `/v1`; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cliente_id: Mapped[int] = mapped_column(
        ForeignKey("clientes.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(20), nullable=False)  # shown, to tell keys apart
    key_sha256: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_by: Mapped[str] = mapped_column(String(20), nullable=False)  # operator | cliente
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRecord(Base):
    """Who erased or deleted what, when (014). Outlives what it describes: `cliente_id` is not
    a foreign key, and a contact is named only masked, never with the erased data."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "cliente_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(String(40), nullable=False)  # operator | api_key:{id}
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    cliente_id: Mapped[int] = mapped_column(Integer, nullable=False)
    subject: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
