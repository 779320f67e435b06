"""Operator API (`Authorization: Bearer <ADMIN_TOKEN>`): clientes, instances, knowledge, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from engine.actors.calls import call_with_timeout
from engine.core.business_hours import BusinessHours
from engine.core.naming import get_collection_name
from engine.core.statuses import OWED_STATUSES, DocumentStatus, MessageStatus
from engine.db import clientes as clientes_db
from engine.db import conversations as conversations_db
from engine.db import deliveries as deliveries_db
from engine.db import inbox as inbox_db
from engine.db import knowledge as knowledge_db
from engine.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from serve_app.deps import Ctx, Session, require_operator
from serve_app.schemas import (
    ClienteCreate,
    ClienteOut,
    ClienteUpdate,
    ConversationOut,
    DeliveryOut,
    DeliveryState,
    DocumentOut,
    InstanceCreate,
    InstanceOut,
    KnowledgeDeleted,
    MessageOut,
    PauseRequest,
    Resent,
    TurnOut,
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_operator)])

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
DELIVERY_STATUSES = {
    DeliveryState.OWED: OWED_STATUSES,
    DeliveryState.DEAD: frozenset({MessageStatus.FALHOU}),
    DeliveryState.ALL: OWED_STATUSES | {MessageStatus.FALHOU},
}
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")


@router.post("/clientes", response_model=ClienteOut, status_code=status.HTTP_201_CREATED)
async def create_cliente(body: ClienteCreate, session: Session) -> ClienteOut:
    _check_wait(body.debounce_s, body.max_wait_s)
    cliente = await clientes_db.create_cliente(
        session, **_canonical(body.model_dump(exclude_none=True))
    )
    await session.commit()
    return ClienteOut.model_validate(cliente)


@router.get("/clientes/{cliente_id}", response_model=ClienteOut)
async def get_cliente(cliente_id: int, session: Session) -> ClienteOut:
    return ClienteOut.model_validate(await clientes_db.get_cliente(session, cliente_id))


@router.patch("/clientes/{cliente_id}", response_model=ClienteOut)
async def update_cliente(cliente_id: int, body: ClienteUpdate, session: Session) -> ClienteOut:
    changes = _canonical(body.model_dump(exclude_unset=True))
    if changes.get("group_replies", "") is None or changes.get("status", "") is None:
        raise InvalidInput("group_replies and status cannot be null")
    current = await clientes_db.get_cliente(session, cliente_id)
    _check_wait(
        changes.get("debounce_s", current.debounce_s),
        changes.get("max_wait_s", current.max_wait_s),
    )
    cliente = await clientes_db.update_cliente(session, cliente_id, **changes)
    await session.commit()
    return ClienteOut.model_validate(cliente)


def _canonical(fields: dict[str, Any]) -> dict[str, Any]:
    """Validate a business-hours schedule and store it in its canonical form."""
    if fields.get("business_hours") is not None:
        try:
            fields["business_hours"] = BusinessHours.parse(fields["business_hours"]).to_json()
        except ValueError as e:
            raise InvalidInput(f"business_hours: {e}") from e
    return fields


def _check_wait(debounce_s: float | None, max_wait_s: float | None) -> None:
    if debounce_s is not None and max_wait_s is not None and max_wait_s < debounce_s:
        raise InvalidInput("max_wait_s must be >= debounce_s")


@router.post(
    "/clientes/{cliente_id}/instances",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
)
async def register_instance(cliente_id: int, body: InstanceCreate, session: Session) -> InstanceOut:
    instancia = await clientes_db.register_instance(session, cliente_id, **body.model_dump())
    await session.commit()
    return InstanceOut.model_validate(instancia)


@router.get("/clientes/{cliente_id}/instances", response_model=list[InstanceOut])
async def list_instances(cliente_id: int, session: Session) -> list[InstanceOut]:
    await clientes_db.get_cliente(session, cliente_id)
    instances = await clientes_db.list_instances(session, cliente_id)
    return [InstanceOut.model_validate(i) for i in instances]


@router.post("/clientes/{cliente_id}/documents", response_model=DocumentOut)
async def upload_document(
    cliente_id: int,
    request: Request,
    response: Response,
    ctx: Ctx,
    session: Session,
    title: str = Query(..., min_length=1, max_length=300),
    wait: bool = Query(False, description="Answer only when the document is searchable."),
) -> DocumentOut:
    """Upload a text/markdown document (raw body). 202 while it is being embedded (poll its
    progress at GET …/documents/{id}), 200 when ready, or when the same text was already there."""
    content_type = request.headers.get("content-type", "text/plain").split(";")[0].strip().lower()
    if content_type not in TEXT_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join(TEXT_TYPES)}, got {content_type!r}"
        )
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB; split it"
        )
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput("document must be UTF-8 text") from e
    if not content.strip():
        raise InvalidInput("document is empty")
    await clientes_db.get_cliente(session, cliente_id)
    document, needs_ingest = await knowledge_db.add_document(
        session, cliente_id, title=title, content_type=content_type, content=content
    )
    await session.commit()
    if not needs_ingest:
        response.status_code = status.HTTP_200_OK
        return DocumentOut.model_validate(document)
    document_id = document.id
    ingest = ctx.knowledge.ingest(cliente_id, document_id, content)
    if wait:
        await ingest
        response.status_code = status.HTTP_200_OK
    else:
        ctx.spawn(
            ingest, what="ingestion", context={"cliente_id": cliente_id, "document_id": document_id}
        )
        response.status_code = status.HTTP_202_ACCEPTED
    session.expire_all()  # progress was written by the ingestion's own sessions
    return DocumentOut.model_validate(
        await knowledge_db.get_document(session, cliente_id, document_id)
    )


@router.get("/clientes/{cliente_id}/documents", response_model=list[DocumentOut])
async def list_documents(cliente_id: int, session: Session) -> list[DocumentOut]:
    await clientes_db.get_cliente(session, cliente_id)
    documents = await knowledge_db.list_documents(session, cliente_id)
    return [DocumentOut.model_validate(d) for d in documents]


@router.get("/clientes/{cliente_id}/documents/{document_id}", response_model=DocumentOut)
async def get_document(cliente_id: int, document_id: int, session: Session) -> DocumentOut:
    return DocumentOut.model_validate(
        await knowledge_db.get_document(session, cliente_id, document_id)
    )


@router.delete("/clientes/{cliente_id}/knowledge", response_model=KnowledgeDeleted)
async def delete_knowledge(cliente_id: int, ctx: Ctx, session: Session) -> KnowledgeDeleted:
    """`deletar_vectorstore_cliente`: the cliente's collection and documents are removed."""
    await clientes_db.get_cliente(session, cliente_id)
    busy = [
        d.id
        for d in await knowledge_db.list_documents(session, cliente_id)
        if d.status is DocumentStatus.PROCESSANDO
    ]
    if busy:
        raise InvalidInput(f"documents {busy} are still being ingested; wait for them to finish")
    await session.rollback()  # end the read before the deletion's own transaction
    deleted = await ctx.knowledge.deletar_vectorstore_cliente(cliente_id)
    return KnowledgeDeleted(collection=get_collection_name(cliente_id), documents_deleted=deleted)


@router.get("/clientes/{cliente_id}/conversations", response_model=list[ConversationOut])
async def list_conversations(cliente_id: int, session: Session) -> list[ConversationOut]:
    await clientes_db.get_cliente(session, cliente_id)
    rows = await conversations_db.list_conversations(session, cliente_id)
    return [ConversationOut.model_validate(c) for c in rows]


@router.get(
    "/clientes/{cliente_id}/conversations/{conversation_id}/messages",
    response_model=list[MessageOut],
)
async def list_messages(
    cliente_id: int, conversation_id: int, session: Session
) -> list[MessageOut]:
    rows = await conversations_db.list_messages(session, cliente_id, conversation_id)
    return [MessageOut.model_validate(m) for m in rows]


@router.get(
    "/clientes/{cliente_id}/conversations/{conversation_id}/turns",
    response_model=list[TurnOut],
)
async def list_turns(cliente_id: int, conversation_id: int, session: Session) -> list[TurnOut]:
    rows = await conversations_db.list_turns(session, cliente_id, conversation_id)
    return [TurnOut.model_validate(t) for t in rows]


@router.post(
    "/clientes/{cliente_id}/conversations/{conversation_id}/pause", response_model=ConversationOut
)
async def pause_conversation(
    cliente_id: int, conversation_id: int, body: PauseRequest, session: Session
) -> ConversationOut:
    """Silence the bot in one chat (a human is answering), for a while or until resumed."""
    await conversations_db.require_conversation(session, cliente_id, conversation_id)
    await inbox_db.pause(session, conversation_id, seconds=body.duration_s, by="operator")
    return await _committed_conversation(session, cliente_id, conversation_id)


@router.post(
    "/clientes/{cliente_id}/conversations/{conversation_id}/resume", response_model=ConversationOut
)
async def resume_conversation(
    cliente_id: int, conversation_id: int, session: Session
) -> ConversationOut:
    await conversations_db.require_conversation(session, cliente_id, conversation_id)
    await inbox_db.resume(session, conversation_id)
    return await _committed_conversation(session, cliente_id, conversation_id)


async def _committed_conversation(
    session: AsyncSession, cliente_id: int, conversation_id: int
) -> ConversationOut:
    await session.commit()
    conversation = await conversations_db.get_conversation(session, cliente_id, conversation_id)
    return ConversationOut.model_validate(conversation)


@router.get("/clientes/{cliente_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    cliente_id: int,
    session: Session,
    state: Annotated[DeliveryState, Query(description="owed, dead or all")] = DeliveryState.ALL,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[DeliveryOut]:
    """Reply parts not delivered: owed (being retried, or waiting for Evolution's echo after an
    unknown outcome) and dead-lettered (FALHOU: re-send them by their turn)."""
    await clientes_db.get_cliente(session, cliente_id)
    rows = await deliveries_db.list_undelivered(
        session, cliente_id, statuses=DELIVERY_STATUSES[state], limit=limit
    )
    return [DeliveryOut.model_validate(row) for row in rows]


@router.post("/clientes/{cliente_id}/turns/{turn_id}/resend", response_model=Resent)
async def resend_turn(cliente_id: int, turn_id: int, session: Session) -> Resent:
    """Deliver a dead-lettered reply again (after fixing what made it fail): its failed parts
    are owed again with a fresh attempt count. 409 unless the turn is FALHOU."""
    requeued = await deliveries_db.resend_turn(session, cliente_id, turn_id)
    await session.commit()
    return Resent(turn_id=turn_id, parts_requeued=requeued)


@router.get("/live")
async def live_conversations(ctx: Ctx) -> dict[str, Any]:
    """Live conversation actors per node, the cap, evictions and recoveries so far."""
    stats: dict[str, Any] = await call_with_timeout(
        ctx.supervisor.stats, timeout_s=ctx.settings.actor_call_timeout_s
    )
    return stats
