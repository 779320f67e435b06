"""The business's conversations: list and read them, pause and resume the bot in a chat."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from engine.core.history import ConversationFilter, utc_instant
from engine.core.statuses import Direction, MessageStatus
from engine.db import conversations as conversations_db
from engine.db import history as history_db
from engine.services import conversations
from serve_app.deps import Ctx, Session, Tenant
from serve_app.schemas import (
    BigRowId,
    ConversationOut,
    ErrorBody,
    HumanMessage,
    MessageOut,
    Page,
    PauseRequest,
    TurnOut,
)

router = APIRouter(prefix="/conversations", tags=["tenant: conversations"])

Limit = Query(50, ge=1, le=200, description="Items per page.")
Cursor = Query(None, ge=1, le=2**63 - 1, description="`next_cursor` of the previous page.")
Since = Query(None, description="From this instant (ISO 8601; naive = UTC).")
Until = Query(None, description="Before this instant.")


@router.get("", response_model=Page[ConversationOut])
async def list_conversations(
    tenant: Tenant,
    session: Session,
    status: Annotated[
        ConversationFilter | None, Query(description="paused, waiting or idle.")
    ] = None,
    since: datetime | None = Since,
    until: datetime | None = Until,
    cursor: int | None = Cursor,
    limit: int = Limit,
) -> Page[ConversationOut]:
    """Newest first; `since`/`until` apply to the last message."""
    rows = await history_db.page_conversations(
        session,
        tenant.cliente_id,
        status=status,
        since=utc_instant(since, name="since"),
        until=utc_instant(until, name="until"),
        before_id=cursor,
        limit=limit,
    )
    return Page[ConversationOut](
        items=[ConversationOut.model_validate(c) for c in rows],
        next_cursor=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: BigRowId, tenant: Tenant, session: Session
) -> ConversationOut:
    conversation = await conversations_db.get_conversation(
        session, tenant.cliente_id, conversation_id
    )
    return ConversationOut.model_validate(conversation)


@router.get("/{conversation_id}/messages", response_model=Page[MessageOut])
async def list_messages(
    conversation_id: BigRowId,
    tenant: Tenant,
    session: Session,
    status: Annotated[MessageStatus | None, Query()] = None,
    direction: Annotated[Direction | None, Query()] = None,
    since: datetime | None = Since,
    until: datetime | None = Until,
    cursor: int | None = Cursor,
    limit: int = Limit,
) -> Page[MessageOut]:
    """Every message in and out, oldest first, with its status."""
    rows = await history_db.page_messages(
        session,
        tenant.cliente_id,
        conversation_id,
        status=status,
        direction=direction,
        since=utc_instant(since, name="since"),
        until=utc_instant(until, name="until"),
        after_id=cursor,
        limit=limit,
    )
    return Page[MessageOut](
        items=[MessageOut.model_validate(m) for m in rows],
        next_cursor=rows[-1].id if len(rows) == limit else None,
    )


@router.get("/{conversation_id}/turns", response_model=list[TurnOut])
async def list_turns(conversation_id: BigRowId, tenant: Tenant, session: Session) -> list[TurnOut]:
    """Each answered burst, its reply and the passages used."""
    rows = await conversations_db.list_turns(session, tenant.cliente_id, conversation_id)
    return [TurnOut.model_validate(t) for t in rows]


@router.post("/{conversation_id}/pause", response_model=ConversationOut)
async def pause(
    conversation_id: BigRowId, tenant: Tenant, session: Session, body: PauseRequest | None = None
) -> ConversationOut:
    """Silence the bot in this chat (a human answers), for `duration_s` or until resumed."""
    conversation = await conversations.pause(
        session,
        tenant.cliente_id,
        conversation_id,
        duration_s=(body or PauseRequest()).duration_s,
    )
    return ConversationOut.model_validate(conversation)


@router.post("/{conversation_id}/resume", response_model=ConversationOut)
async def resume(conversation_id: BigRowId, tenant: Tenant, session: Session) -> ConversationOut:
    """Let the bot answer this chat again."""
    conversation = await conversations.resume(session, tenant.cliente_id, conversation_id)
    return ConversationOut.model_validate(conversation)


SEND_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Evolution refused it, or the chat has no instance"},
    502: {"model": ErrorBody, "description": "Evolution could not be reached"},
    503: {"model": ErrorBody, "description": "Evolution is not configured"},
}


@router.post(
    "/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=status.HTTP_201_CREATED,
    responses=SEND_ERRORS,
)
async def send_as_human(
    conversation_id: BigRowId, body: HumanMessage, tenant: Tenant, ctx: Ctx
) -> MessageOut:
    """Answer the customer as a person at the business: sent through the chat's Evolution
    instance and recorded as the human's; the bot pauses in this chat as after a takeover on
    the phone (`human_pause_s`). Nothing is recorded when Evolution does not take it."""
    message = await ctx.human_replies.send(tenant.cliente_id, conversation_id, body.text)
    return MessageOut.model_validate(message)
