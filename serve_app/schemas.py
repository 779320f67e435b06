"""Request and response bodies of the operator API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.db.models import (
    Author,
    ClienteStatus,
    Direction,
    DocumentStatus,
    InstanciaStatus,
    MessageStatus,
    TurnStatus,
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClienteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nome: str = Field(min_length=1, max_length=200)
    status: ClienteStatus = ClienteStatus.ATIVO
    system_prompt: str | None = Field(None, max_length=4000, description="Persona / instructions.")
    debounce_s: float | None = Field(None, ge=0, le=300)
    max_wait_s: float | None = Field(None, ge=0, le=3600)


class ClienteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nome: str | None = Field(None, min_length=1, max_length=200)
    status: ClienteStatus | None = None
    system_prompt: str | None = Field(None, max_length=4000)
    debounce_s: float | None = Field(None, ge=0, le=300)
    max_wait_s: float | None = Field(None, ge=0, le=3600)


class ClienteOut(_Out):
    id: int
    nome: str
    status: ClienteStatus
    system_prompt: str | None
    debounce_s: float | None
    max_wait_s: float | None
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
    status: str
    detail: str | None = None
