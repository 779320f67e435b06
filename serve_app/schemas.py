"""Request and response bodies of the operator API (`/admin`) and the tenant API (`/v1`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

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
from engine.core.turns import ReplyKind

# Path ids of the tenant API, bounded by their columns (a larger number is a 422, not a 500).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # INTEGER keys: instances, documents, keys
BigRowId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # BIGINT keys: conversations
# A customer in an LGPD request: a phone number typed any usual way, or either JID form.
Contact = Annotated[
    str,
    Path(
        max_length=120,
        description="The customer's phone number or WhatsApp JID (@s.whatsapp.net or @lid).",
    ),
]

INSTANCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
NUMBER = r"^\d{8,15}$"


class _In(BaseModel):
    """A request body: unknown fields are refused, and so is text PostgreSQL cannot store."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul_characters(self) -> _In:
        if _has_nul(self.model_dump()):
            raise ValueError("text may not contain NUL (\\u0000) characters")
        return self


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClienteBehaviour(_In):
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
    relevance_min_score: float | None = Field(
        None, ge=-1, le=2, description="Below this relevance the bot says it does not know."
    )
    dont_know_message: str | None = Field(None, min_length=1, max_length=1000)
    handoff_webhook_url: str | None = Field(
        None, pattern=r"^https?://", max_length=500, description="POSTed when a chat needs a human."
    )
    handoff_whatsapp: str | None = Field(
        None, pattern=r"^\d{8,15}$", description="Operator number told on WhatsApp (digits, DDI)."
    )


class ClienteLimits(_In):
    """What one chat may cost: the operator's, never the tenant's (null = the global default)."""

    chat_max_messages: int | None = Field(
        None, ge=0, le=100_000, description="Messages per chat within CHAT_WINDOW_S; 0 = no limit."
    )
    llm_daily_tokens: int | None = Field(
        None, ge=0, le=2**31 - 1, description="LLM tokens a day (UTC); 0 = no budget."
    )


class ClienteCreate(ClienteBehaviour, ClienteLimits):
    nome: str = Field(min_length=1, max_length=200)
    status: ClienteStatus | None = Field(
        None,
        description="Omit: PENDENTE until it pays (ATIVO during a configured trial). An operator "
        "may set ATIVO to serve a cliente without Stripe.",
    )


class ClienteUpdate(ClienteBehaviour, ClienteLimits):
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
    relevance_min_score: float | None
    dont_know_message: str | None
    handoff_webhook_url: str | None
    handoff_whatsapp: str | None
    chat_max_messages: int | None
    llm_daily_tokens: int | None
    created_at: datetime
    subscription_status: str | None = Field(description="Stripe's status of its subscription.")
    past_due_since: datetime | None
    trial_ends_at: datetime | None


class MeUpdate(ClienteBehaviour):
    """What a business may change about itself (its status follows Stripe and operators)."""

    nome: str | None = Field(None, min_length=1, max_length=200)


class InstanceCreate(_In):
    model_config = ConfigDict(extra="forbid")

    instance_id: str = Field(pattern=INSTANCE_NAME, description="The Evolution instance name.")
    numero: str | None = Field(None, pattern=NUMBER, description="Digits only, with DDI.")
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
    qr_code: str | None = Field(description="The raw QR string; GET …/qr.png draws it.")
    pairing_code: str | None = Field(description="Typed on the phone instead of scanning.")
    provisioned: bool = Field(description="Created on Evolution by Conversa.")
    created_at: datetime


class InstanceConnect(_In):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, pattern=INSTANCE_NAME, description="The Evolution instance name; omit to get one."
    )
    number: str | None = Field(
        None,
        pattern=NUMBER,
        description="The phone's number (digits, with DDI): adds a pairing code.",
    )


class InstanceReconnect(_In):
    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(None, pattern=NUMBER, description="Ask for a pairing code too.")


class QrOut(BaseModel):
    instance: int
    status: InstanciaStatus
    code: str = Field(description="The raw QR string (what the phone scans).")
    pairing_code: str | None
    png_url: str = Field(description="The same QR code drawn as a PNG.")


class DocumentOut(_Out):
    id: int
    title: str
    content_type: str
    size_bytes: int
    status: DocumentStatus
    chunks_total: int
    chunks_done: int
    attempts: int
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
    needs_human_since: datetime | None
    needs_human_reason: str | None


class PauseRequest(_In):
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


GROUNDED_KINDS = frozenset({ReplyKind.LLM.value, ReplyKind.OFFLINE.value})


class Citation(BaseModel):
    """A document and section a reply was grounded in."""

    document_id: int | None
    title: str
    section: str


class TurnOut(_Out):
    id: int
    status: TurnStatus
    user_text: str
    reply_text: str | None
    reply_kind: str | None
    sources: list[dict[str, Any]] | None
    created_at: datetime
    answered_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def citations(self) -> list[Citation]:
        """Which documents and sections the reply used, each once, in the order used (none for
        a fixed reply or an "I don't know")."""
        seen: list[Citation] = []
        if self.reply_kind not in GROUNDED_KINDS:
            return seen
        for source in self.sources or []:
            citation = Citation(
                document_id=source.get("document_id"),
                title=str(source.get("title") or ""),
                section=str(source.get("section") or ""),
            )
            if citation not in seen:
                seen.append(citation)
        return seen


class NeedsHumanOut(BaseModel):
    """Chats waiting for a human, oldest first."""

    count: int
    conversations: list[ConversationOut]


class KnowledgeStats(BaseModel):
    """A cliente's knowledge at a glance: once nothing is being ingested, `vectors` equals
    `chunks_embedded` equals `chunks`."""

    collection: str
    documents: int
    chunks: int
    chunks_embedded: int
    vectors: int


class KnowledgeDeleted(BaseModel):
    collection: str
    documents_deleted: int


class WebhookAck(BaseModel):
    """What every accepted or ignored webhook is answered (200)."""

    status: InboundOutcome
    detail: str | None = Field(None, description="why it was ignored or recorded unanswered")


# --- tenant API --------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, snake_case: not_found, invalid_input, conflict, …")
    message: str = Field(description="What went wrong and what to do.")
    fields: list[FieldError] | None = Field(None, description="Per-field reasons (validation).")


class ErrorBody(BaseModel):
    """Every 4xx (and 5xx) of the tenant API."""

    error: ErrorDetail


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null: last.")


class ApiKeyCreate(_In):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("default", min_length=1, max_length=100, description="What it is for.")


class ApiKeyOut(_Out):
    id: int
    name: str
    prefix: str = Field(description="The key's first characters, shown to tell keys apart.")
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never again.")


class SignupRequest(_In):
    model_config = ConfigDict(extra="forbid")

    nome: str = Field(min_length=1, max_length=200, description="The business's name.")


class SignupOut(BaseModel):
    cliente: ClienteOut
    api_key: ApiKeyCreated


class BillingOut(BaseModel):
    status: ClienteStatus
    served: bool = Field(description="Whether its customers are answered now.")
    subscription_status: str | None
    past_due_since: datetime | None
    grace_ends_at: datetime | None = Field(
        description="When a past_due cliente stops being served."
    )
    trial_ends_at: datetime | None
    has_customer: bool


class CheckoutRequest(_In):
    model_config = ConfigDict(extra="forbid")

    success_url: str | None = Field(None, pattern=r"^https?://", max_length=2000)
    cancel_url: str | None = Field(None, pattern=r"^https?://", max_length=2000)


class PortalRequest(_In):
    model_config = ConfigDict(extra="forbid")

    return_url: str | None = Field(None, pattern=r"^https?://", max_length=2000)


class LinkOut(BaseModel):
    url: str = Field(description="Open it in a browser.")


class DayStatsOut(_Out):
    day: date
    messages_in: int
    messages_out: int
    replies: int
    replies_by_kind: dict[str, int]
    median_reply_s: float | None
    llm_tokens: int
    active_conversations: int
    takeovers: int


class AnalyticsOut(BaseModel):
    tz: str
    days: list[DayStatsOut]


class NodeStatusOut(_Out):
    node_id: str
    address: str
    alive: bool
    live: int = Field(description="Live conversation actors on the node.")
    slots: int = Field(description="Conversation slots the node offers (MAX_LIVE_CONVERSATIONS).")


class FailureOut(_Out):
    at: datetime
    cliente_id: int
    what: str = Field(description="`send` (Evolution refused a reply part) or `ingestion`.")
    error: str
    chat: str | None = None
    conversation_id: int | None = None


class StatusOut(_Out):
    nodes: list[NodeStatusOut]
    live_per_cliente: dict[int, int]
    pending_bursts: dict[int, int] = Field(
        description="Cliente id -> conversations with a burst accepted and not yet answered."
    )
    sends_owed: int = Field(description="Reply parts recorded and not yet confirmed sent.")
    recent_failures: list[FailureOut] = Field(description="Failures of the last hour.")
    counters: dict[str, int] = Field(description="Evicted, reaped and recovered since start.")
    waiting_for_a_human: dict[str, dict[int, int]] = Field(
        default_factory=dict,
        description="Reason -> cliente id -> chats waiting for a human: `llm_budget_exceeded` "
        "(the cliente spent LLM_DAILY_TOKENS), `too_many_messages`, `loop_suspected`, "
        "`no_relevant_passage`.",
    )


class CheckOut(BaseModel):
    ok: bool
    detail: str


class ReadinessOut(BaseModel):
    status: str = Field(description="`ready` or `not ready`.")
    failed: list[str] = Field(description="The dependencies that are not reachable.")
    checks: dict[str, CheckOut]


class HumanMessage(_In):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4096, description="What the person writes.")


class KnowledgeQuestion(_In):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000)
    k: int | None = Field(None, ge=1, le=20, description="Passages; default RETRIEVAL_TOP_K.")


class PassageOut(_Out):
    document_id: int | None
    title: str
    section: str
    text: str
    similarity: float = Field(description="cosine between question and passage")
    coverage: float = Field(description="share of the question's IDF the passage holds")
    score: float = Field(description="fused rank score that ordered it")


class ContactExportOut(BaseModel):
    """Everything a cliente holds about one contact (LGPD access request)."""

    cliente_id: int
    contact: str = Field(description="the JID the request named, normalized")
    jids: list[str] = Field(description="every JID of this person (phone and LIDs)")
    conversations: list[dict[str, Any]] = Field(
        description="state, every message, every turn (with the passages copied into it) and "
        "the memory of each conversation"
    )
    lid_pairs: list[dict[str, Any]]


class ContactErased(BaseModel):
    """What an erasure deleted (LGPD); the audit log keeps these counts, never the data."""

    conversations: int
    messages: int
    turns: int
    processed_webhooks: int
    lid_pairs: int
    actors_forgotten: int


class ClienteDeleted(BaseModel):
    """What deleting a cliente removed (the audit log keeps these counts)."""

    cliente_id: int
    resumed: bool = Field(description="an earlier, interrupted deletion was finished")
    conversations: int
    messages: int
    processed_webhooks: int
    instances: int
    documents: int
    actors_forgotten: int
