"""Conversas: the chats with their last message and state (live), and a chat's whole history
with the passages used for each reply; pause, resume / hand back to the bot, and send a message
as a human. The same services as /v1 (`conversations`, `HumanReplies`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from engine.core.console import ChatState, chat_state
from engine.db import conversations as conversations_db
from engine.db import history as history_db
from engine.db.models import Conversation
from engine.services import conversations
from serve_app.console.web import CsrfChecked, CurrentViewer, Viewer, render
from serve_app.schemas import BigRowId

router = APIRouter(prefix="/conversas")
LIST_LIMIT = 100


@router.get("")
async def page(request: Request, viewer: CurrentViewer) -> Response:
    return await render(
        request,
        "conversations.html",
        viewer,
        page="conversations",
        chats=await _chats(request, viewer),
    )


@router.get("/lista")
async def list_fragment(request: Request, viewer: CurrentViewer) -> Response:
    """Polled every 2 s: new chats, last messages and states."""
    return await render(request, "_chat_list.html", viewer, chats=await _chats(request, viewer))


async def _chats(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    async with request.app.state.ctx.sessions() as db:
        rows = await history_db.chat_summaries(db, viewer.cliente_id, limit=LIST_LIMIT)
    now = datetime.now(UTC)
    return [
        {
            "conversation": row.conversation,
            "last_text": row.last_text,
            "last_author": row.last_author,
            "state": _state(row.conversation, row.failed_sends, now),
        }
        for row in rows
    ]


def _state(conversation: Conversation, failed: int, now: datetime) -> ChatState:
    return chat_state(
        now=now,
        paused_until=conversation.paused_until,
        paused_by=conversation.paused_by,
        needs_human_since=conversation.needs_human_since,
        failed_sends=failed,
    )


@router.get("/{conversation_id}")
async def chat(conversation_id: BigRowId, request: Request, viewer: CurrentViewer) -> Response:
    return await render(
        request,
        "chat.html",
        viewer,
        page="conversations",
        **await _chat(request, viewer, conversation_id),
    )


@router.get("/{conversation_id}/historico")
async def history_fragment(
    conversation_id: BigRowId, request: Request, viewer: CurrentViewer
) -> Response:
    """Polled every 2 s: new messages, the state and its buttons."""
    return await render(
        request, "_chat_body.html", viewer, **await _chat(request, viewer, conversation_id)
    )


async def _chat(request: Request, viewer: Viewer, conversation_id: int) -> dict[str, Any]:
    async with request.app.state.ctx.sessions() as db:
        conversation = await conversations_db.get_conversation(
            db, viewer.cliente_id, conversation_id
        )
        messages = await conversations_db.list_messages(db, viewer.cliente_id, conversation_id)
        turns = await conversations_db.list_turns(db, viewer.cliente_id, conversation_id)
        failed = await history_db.failed_sends(db, conversation_id)
    passages = {t.id: t.sources or [] for t in turns}  # what the model was given per reply
    return {
        "conversation": conversation,
        "messages": messages,
        "passages": passages,
        "state": _state(conversation, failed, datetime.now(UTC)),
        "pause_choices_s": PAUSE_CHOICES_S,
    }


PAUSE_CHOICES_S = (1800, 7200)  # the page offers 30 min, 2 h, or until resumed


@router.post("/{conversation_id}/pausar", dependencies=[CsrfChecked])
async def pause(
    conversation_id: BigRowId,
    request: Request,
    viewer: CurrentViewer,
    duration_s: Annotated[int | None, Form(ge=60, le=30 * 86400)] = None,
) -> Response:
    """Take the chat over: the bot is silent for `duration_s`, or until resumed."""
    async with request.app.state.ctx.sessions() as db:
        await conversations.pause(db, viewer.cliente_id, conversation_id, duration_s=duration_s)
    return await history_fragment(conversation_id, request, viewer)


@router.post("/{conversation_id}/retomar", dependencies=[CsrfChecked])
async def resume(conversation_id: BigRowId, request: Request, viewer: CurrentViewer) -> Response:
    """Resume after a pause, or hand a chat that needed a human back to the bot."""
    async with request.app.state.ctx.sessions() as db:
        await conversations.resume(db, viewer.cliente_id, conversation_id)
    return await history_fragment(conversation_id, request, viewer)


@router.post("/{conversation_id}/enviar", dependencies=[CsrfChecked])
async def send(
    conversation_id: BigRowId,
    request: Request,
    viewer: CurrentViewer,
    text: Annotated[str, Form(min_length=1, max_length=4096)],
) -> Response:
    await request.app.state.ctx.human_replies.send(viewer.cliente_id, conversation_id, text)
    return await history_fragment(conversation_id, request, viewer)
