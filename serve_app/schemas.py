"""Request and response bodies of the operator API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.core.inbound import InboundOutcome
from engine.core.statuses import (
    Author,
    ClienteStatus,
    Direction,
    DocumentStatus,
    GroupReplies,
    InstanciaStatus,
    MessageStatus,
    TurnStatus,
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClienteBehaviour(BaseModel):
    """Per-cliente overrides of the global defaults (null = use the default)."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(None, max_length=4000, description="Persona / instructions.")
    debounce_s: float | None = Field(None, ge=0, le=300)
    max_wait_s: float | None = Field(None, ge=0, le=3600)
    human_pause_s: float | None = Field(None, ge=0, le=30 * 86400)
    session_expire_s: float | None = Field(None, gt=0, le=30 * 86400)
    finish_keyword: str | None = Field(None, min_length=1, max_length=40)
    finish_message: str | None = Field(None, min_length=1, max_length=1000)
    media_unsupported_message: str | None = Field(None, min_length=1, max_length=1000)
    out_of_office_message: str | None = Field(None, min_length=1, max_length=1000)
    business_hours: dict[str, Any] | None = Field(
        None,
        description='{"timezone": "America/Sao_Paulo", "weekly": {"mon": [["09:00", "18:00"]]}}',
    )
    group_replies: GroupReplies | None = None


class ClienteCreate(ClienteBehaviour):
    nome: str = Field(min_length=1, max_length=200)
    status: ClienteStatus = ClienteStatus.ATIVO


class ClienteUpdate(ClienteBehaviour):
    nome: str | None = Field(None, min_length=1, max_length=200)
    status: ClienteStatus | None = None


class ClienteOut(_Out):
    id: int
    nome: str
    status: ClienteStatus
    system_prompt: str | None
    debounce_s: float | None
    max_wait_s: float | None
    human_pause_s: float | None
    session_expire_s: float | None
    finish_keyword: str | None
    finish_message: str | None
    media_unsupported_message: str | None
    out_of_office_message: str | None
    business_hours: dict[str, Any] | None
    group_replies: GroupReplies
    created_at: datetime


class InstanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", description="The Evolution instance name."
    )
    numero: str | None = Field(None, pattern=r"^\d{8,15}$", description="Digits only, with DDI.")
    webhook_secret: str = Field(
        min_length=16,
        max_length=200,
        description="Evolution sends it in the X-Conversa-Secret header.",
    )
    api_key: str | None = Field(None, max_length=200, description="The instance's Evolution key.")


class InstanceOut(_Out):
    id: int
    instance_id: str
    numero: str | None
    status: InstanciaStatus
    qr_code: str | None
    created_at: datetime


class DocumentOut(_Out):
    id: int
    title: str
    content_type: str
    size_bytes: int
    status: DocumentStatus
    chunks_total: int
    chunks_done: int
    error: str | None
    created_at: datetime


class ConversationOut(_Out):
    id: int
    chat_jid: str
    session_id: str
    push_name: str | None
    last_message_at: datetime
    paused_until: datetime | None
    paused_by: str | None
    session_started_at: datetime | None
    answer_due_at: datetime | None


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = Field(
        None, gt=0, le=365 * 86400, description="Omit to pause until resumed."
    )


class MessageOut(_Out):
    id: int
    direction: Direction
    author: Author
    status: MessageStatus
    text: str
    wa_message_id: str | None
    message_type: str | None
    ignored_reason: str | None
    error: str | None
    turn_id: int | None
    created_at: datetime
    attempts: int = Field(description="sends of this reply part so far")
    next_attempt_at: datetime | None = Field(
        description="owed part: when it is (re)sent, or when an unknown outcome stops waiting "
        "for Evolution's echo"
    )


class DeliveryState(StrEnum):
    """Which undelivered reply parts to list."""

    OWED = "owed"  # PENDENTE, ENVIANDO, INCERTA: still being delivered
    DEAD = "dead"  # FALHOU: given up, re-sendable
    ALL = "all"


class DeliveryOut(_Out):
    """A reply part not (yet) delivered."""

    message_id: int
    conversation_id: int
    chat_jid: str
    turn_id: int | None = Field(description="re-send a dead-lettered reply by this id")
    status: MessageStatus
    text: str
    attempts: int
    unconfirmed: int = Field(description="sends whose outcome stayed unknown (no echo)")
    owed_since: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    error: str | None


class Resent(BaseModel):
    turn_id: int
    parts_requeued: int


class TurnOut(_Out):
    id: int
    status: TurnStatus
    user_text: str
    reply_text: str | None
    reply_kind: str | None
    sources: list[dict[str, Any]] | None
    created_at: datetime
    answered_at: datetime | None


class KnowledgeDeleted(BaseModel):
    collection: str
    documents_deleted: int


class WebhookAck(BaseModel):
    """What every accepted or ignored webhook is answered (200)."""

    status: InboundOutcome
    detail: str | None = Field(None, description="why it was ignored or recorded unanswered")
