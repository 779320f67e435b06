"""Operator API (`Authorization: Bearer <ADMIN_TOKEN>`): clientes, instances, knowledge, history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from engine.actors.calls import call_with_timeout
from engine.core.naming import get_collection_name
from engine.core.statuses import OWED_STATUSES, MessageStatus
from engine.db import api_keys as api_keys_db
from engine.db import chunks as chunks_db
from engine.db import clientes as clientes_db
from engine.db import conversations as conversations_db
from engine.db import deliveries as deliveries_db
from engine.db import handoff as handoff_db
from engine.db import knowledge as knowledge_db
from engine.errors import InvalidInput
from engine.services import api_keys, clientes, conversations
from engine.services.privacy import OPERATOR
from engine.services.status import gather_status
from serve_app.deps import Ctx, Session, require_operator, upload_body
from serve_app.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    BigRowId,
    BillingOut,
    ClienteCreate,
    ClienteDeleted,
    ClienteOut,
    ClienteUpdate,
    Contact,
    ContactErased,
    ContactExportOut,
    ConversationOut,
    DeliveryOut,
    DeliveryState,
    DocumentOut,
    InstanceConnect,
    InstanceCreate,
    InstanceOut,
    KnowledgeDeleted,
    KnowledgeStats,
    LinkOut,
    MessageOut,
    NeedsHumanOut,
    PauseRequest,
    QrOut,
    Resent,
    RowId,
    StatusOut,
    TurnOut,
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_operator)])

DELIVERY_STATUSES = {
    DeliveryState.OWED: OWED_STATUSES,
    DeliveryState.DEAD: frozenset({MessageStatus.FALHOU}),
    DeliveryState.ALL: OWED_STATUSES | {MessageStatus.FALHOU},
}


@router.post("/clientes", response_model=ClienteOut, status_code=status.HTTP_201_CREATED)
async def create_cliente(body: ClienteCreate, ctx: Ctx, session: Session) -> ClienteOut:
    """A new cliente: PENDENTE until it pays (ATIVO during a configured trial), unless
    `status` says otherwise (e.g. ATIVO: served without Stripe)."""
    fields = body.model_dump(exclude_none=True, exclude={"status"})
    cliente = await clientes.create_cliente(
        session, fields, status=body.status, trial_days=ctx.settings.trial_days
    )
    await session.commit()
    return ClienteOut.model_validate(cliente)


@router.get("/clientes/{cliente_id}", response_model=ClienteOut)
async def get_cliente(cliente_id: RowId, session: Session) -> ClienteOut:
    return ClienteOut.model_validate(await clientes_db.get_cliente(session, cliente_id))


@router.patch("/clientes/{cliente_id}", response_model=ClienteOut)
async def update_cliente(
    cliente_id: RowId, body: ClienteUpdate, ctx: Ctx, session: Session
) -> ClienteOut:
    """Change a cliente; a status that stops it being served silences its live chats at once."""
    cliente, change = await clientes.update_cliente(
        session, cliente_id, body.model_dump(exclude_unset=True)
    )
    await session.commit()
    ctx.announce(change)
    return ClienteOut.model_validate(cliente)


@router.delete("/clientes/{cliente_id}", response_model=ClienteDeleted)
async def delete_cliente(
    cliente_id: int,
    ctx: Ctx,
    confirm: int = Query(..., description="The cliente's id again: deletion cannot be undone."),
) -> ClienteDeleted:
    """Delete a cliente and everything it owns: conversations, messages, knowledge (rows, Chroma
    collection and directory), instances (on Evolution too), API keys, live actors; audited.
    An interrupted deletion (the cliente stays EXCLUINDO) is finished by asking again."""
    if confirm != cliente_id:
        raise InvalidInput(f"confirm must repeat the cliente's id ({cliente_id})")
    return ClienteDeleted.model_validate(await ctx.deletion.delete(cliente_id, actor=OPERATOR))


@router.post(
    "/clientes/{cliente_id}/instances",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
)
async def register_instance(cliente_id: RowId, body: InstanceCreate, ctx: Ctx) -> InstanceOut:
    """Register an instance made on Evolution by hand, with the secret it sends."""
    instancia = await ctx.instances.register(cliente_id, **body.model_dump())
    return InstanceOut.model_validate(instancia)


@router.get("/clientes/{cliente_id}/instances", response_model=list[InstanceOut])
async def list_instances(cliente_id: RowId, session: Session) -> list[InstanceOut]:
    await clientes_db.get_cliente(session, cliente_id)
    instances = await clientes_db.list_instances(session, cliente_id)
    return [InstanceOut.model_validate(i) for i in instances]


@router.post("/clientes/{cliente_id}/documents", response_model=DocumentOut)
async def upload_document(
    cliente_id: RowId,
    request: Request,
    response: Response,
    ctx: Ctx,
    title: str = Query(..., min_length=1, max_length=300),
    wait: bool = Query(False, description="Answer only when the document is searchable."),
) -> DocumentOut:
    """Upload a document as the raw body: PDF, DOCX, HTML, Markdown, text, or CSV/XLSX of
    question–answer pairs (by Content-Type, or by the title's extension for
    application/octet-stream). 202 while it is being embedded (poll GET …/documents/{id}),
    200 when ready or when the same text was already there. Uploading a new text under an
    existing title replaces that document once the new one is ready."""
    document, ready = await ctx.knowledge.receive(
        cliente_id,
        title=title,
        content_type=request.headers.get("content-type", ""),
        raw=await upload_body(request, ctx),
        wait=wait,
    )
    response.status_code = status.HTTP_200_OK if ready else status.HTTP_202_ACCEPTED
    return DocumentOut.model_validate(document)


@router.get("/clientes/{cliente_id}/documents", response_model=list[DocumentOut])
async def list_documents(cliente_id: RowId, session: Session) -> list[DocumentOut]:
    await clientes_db.get_cliente(session, cliente_id)
    documents = await knowledge_db.list_documents(session, cliente_id)
    return [DocumentOut.model_validate(d) for d in documents]


@router.get("/clientes/{cliente_id}/documents/{document_id}", response_model=DocumentOut)
async def get_document(cliente_id: RowId, document_id: RowId, session: Session) -> DocumentOut:
    return DocumentOut.model_validate(
        await knowledge_db.get_document(session, cliente_id, document_id)
    )


@router.delete(
    "/clientes/{cliente_id}/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def delete_document(
    cliente_id: RowId, document_id: RowId, ctx: Ctx, session: Session
) -> None:
    """Delete one document: its chunks and vectors go with it (an ingestion in progress stops)."""
    await knowledge_db.get_document(session, cliente_id, document_id)
    await session.rollback()  # end the read before the retriever's own transaction
    await ctx.knowledge.delete_document(cliente_id, document_id)


@router.get("/clientes/{cliente_id}/knowledge", response_model=KnowledgeStats)
async def knowledge_stats(cliente_id: RowId, ctx: Ctx, session: Session) -> KnowledgeStats:
    """Documents, chunks and vectors of a cliente (vectors are counted by its retriever)."""
    await clientes_db.get_cliente(session, cliente_id)
    documents = len(await knowledge_db.list_documents(session, cliente_id))
    chunks, embedded = await chunks_db.totals(session, cliente_id)
    await session.rollback()
    stats = await ctx.knowledge.retriever(cliente_id).call("stats")
    return KnowledgeStats(
        collection=get_collection_name(cliente_id),
        documents=documents,
        chunks=chunks,
        chunks_embedded=embedded,
        vectors=stats["vectors"],
    )


@router.delete("/clientes/{cliente_id}/knowledge", response_model=KnowledgeDeleted)
async def delete_knowledge(
    cliente_id: RowId,
    ctx: Ctx,
    session: Session,
    force: bool = Query(False, description="Also stop ingestions in progress."),
) -> KnowledgeDeleted:
    """`deletar_vectorstore_cliente`: the cliente's collection, documents and chunks are removed.
    409 while documents are being ingested, unless `force=true`."""
    await clientes_db.get_cliente(session, cliente_id)
    await session.rollback()  # end the read before the deletion's own transaction
    deleted = await ctx.knowledge.deletar_vectorstore_cliente(cliente_id, force=force)
    return KnowledgeDeleted(collection=get_collection_name(cliente_id), documents_deleted=deleted)


@router.get("/clientes/{cliente_id}/conversations", response_model=list[ConversationOut])
async def list_conversations(cliente_id: RowId, session: Session) -> list[ConversationOut]:
    await clientes_db.get_cliente(session, cliente_id)
    rows = await conversations_db.list_conversations(session, cliente_id)
    return [ConversationOut.model_validate(c) for c in rows]


@router.get("/clientes/{cliente_id}/needs-human", response_model=NeedsHumanOut)
async def needs_human(cliente_id: RowId, session: Session) -> NeedsHumanOut:
    """Chats where the bot did not know and asked for a human, oldest first. One leaves the list
    when a human answers on the phone or an operator resumes it."""
    await clientes_db.get_cliente(session, cliente_id)
    rows = await handoff_db.waiting(session, cliente_id)
    return NeedsHumanOut(
        count=len(rows), conversations=[ConversationOut.model_validate(c) for c in rows]
    )


@router.get(
    "/clientes/{cliente_id}/conversations/{conversation_id}/messages",
    response_model=list[MessageOut],
)
async def list_messages(
    cliente_id: RowId, conversation_id: BigRowId, session: Session
) -> list[MessageOut]:
    rows = await conversations_db.list_messages(session, cliente_id, conversation_id)
    return [MessageOut.model_validate(m) for m in rows]


@router.get(
    "/clientes/{cliente_id}/conversations/{conversation_id}/turns",
    response_model=list[TurnOut],
)
async def list_turns(
    cliente_id: RowId, conversation_id: BigRowId, session: Session
) -> list[TurnOut]:
    rows = await conversations_db.list_turns(session, cliente_id, conversation_id)
    return [TurnOut.model_validate(t) for t in rows]


@router.post(
    "/clientes/{cliente_id}/conversations/{conversation_id}/pause", response_model=ConversationOut
)
async def pause_conversation(
    cliente_id: RowId, conversation_id: BigRowId, body: PauseRequest, session: Session
) -> ConversationOut:
    """Silence the bot in one chat (a human is answering), for a while or until resumed."""
    conversation = await conversations.pause(
        session, cliente_id, conversation_id, duration_s=body.duration_s
    )
    return ConversationOut.model_validate(conversation)


@router.post(
    "/clientes/{cliente_id}/conversations/{conversation_id}/resume", response_model=ConversationOut
)
async def resume_conversation(
    cliente_id: RowId, conversation_id: BigRowId, session: Session
) -> ConversationOut:
    conversation = await conversations.resume(session, cliente_id, conversation_id)
    return ConversationOut.model_validate(conversation)


# --- for the business: provisioned instances, API keys, billing links -------------------------


@router.post(
    "/clientes/{cliente_id}/instances/connect",
    response_model=InstanceOut,
    status_code=status.HTTP_201_CREATED,
)
async def connect_instance(
    cliente_id: RowId, ctx: Ctx, body: InstanceConnect | None = None
) -> InstanceOut:
    """Provision an instance on Evolution for the cliente (as `POST /v1/instances`)."""
    body = body or InstanceConnect()
    instancia = await ctx.instances.provision(cliente_id, name=body.name, number=body.number)
    return InstanceOut.model_validate(instancia)


@router.get("/clientes/{cliente_id}/instances/{instancia_id}/qr", response_model=QrOut)
async def instance_qr(cliente_id: RowId, instancia_id: RowId, ctx: Ctx, request: Request) -> QrOut:
    """The raw QR code and pairing code (409 once connected)."""
    view = await ctx.instances.qr(cliente_id, instancia_id)
    assert view.code is not None
    png = request.url_for("instance_qr_png", cliente_id=cliente_id, instancia_id=instancia_id)
    return QrOut(
        instance=view.instancia_id,
        status=view.status,
        code=view.code,
        pairing_code=view.pairing_code,
        png_url=str(png),
    )


@router.get(
    "/clientes/{cliente_id}/instances/{instancia_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def instance_qr_png(cliente_id: RowId, instancia_id: RowId, ctx: Ctx) -> Response:
    png = await ctx.instances.qr_png(cliente_id, instancia_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/clientes/{cliente_id}/instances/{instancia_id}/state", response_model=InstanceOut)
async def instance_state(cliente_id: RowId, instancia_id: RowId, ctx: Ctx) -> InstanceOut:
    """The connection state, asked of Evolution now."""
    return InstanceOut.model_validate(await ctx.instances.refresh_state(cliente_id, instancia_id))


@router.post(
    "/clientes/{cliente_id}/instances/{instancia_id}/rotate-secret", response_model=InstanceOut
)
async def instance_rotate_secret(cliente_id: RowId, instancia_id: RowId, ctx: Ctx) -> InstanceOut:
    return InstanceOut.model_validate(await ctx.instances.rotate_secret(cliente_id, instancia_id))


@router.delete(
    "/clientes/{cliente_id}/instances/{instancia_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_instance(cliente_id: RowId, instancia_id: RowId, ctx: Ctx) -> Response:
    await ctx.instances.delete(cliente_id, instancia_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/clientes/{cliente_id}/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
)
async def create_api_key(cliente_id: RowId, body: ApiKeyCreate, session: Session) -> ApiKeyCreated:
    """A tenant API key for the cliente; the key is in this answer only."""
    created = await api_keys.create_key(session, cliente_id, name=body.name, created_by="operator")
    await session.commit()
    fields = ApiKeyOut.model_validate(created.row).model_dump()
    return ApiKeyCreated.model_validate({**fields, "key": created.key})


@router.get("/clientes/{cliente_id}/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(cliente_id: RowId, session: Session) -> list[ApiKeyOut]:
    await clientes_db.get_cliente(session, cliente_id)
    return [ApiKeyOut.model_validate(k) for k in await api_keys_db.list_keys(session, cliente_id)]


@router.delete("/clientes/{cliente_id}/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_api_key(cliente_id: RowId, key_id: RowId, session: Session) -> ApiKeyOut:
    row = await api_keys_db.revoke_key(session, cliente_id, key_id)
    await session.commit()
    return ApiKeyOut.model_validate(row)


@router.get("/clientes/{cliente_id}/billing", response_model=BillingOut)
async def billing_status(cliente_id: RowId, ctx: Ctx) -> BillingOut:
    return BillingOut.model_validate(await ctx.billing.status(cliente_id), from_attributes=True)


@router.post("/clientes/{cliente_id}/billing/checkout", response_model=LinkOut)
async def billing_checkout(cliente_id: RowId, ctx: Ctx) -> LinkOut:
    """A Stripe Checkout link to send to the business."""
    return LinkOut(url=await ctx.billing.checkout_url(cliente_id))


@router.post("/clientes/{cliente_id}/billing/portal", response_model=LinkOut)
async def billing_portal(cliente_id: RowId, ctx: Ctx) -> LinkOut:
    """A Stripe Customer Portal link to send to the business."""
    return LinkOut(url=await ctx.billing.portal_url(cliente_id))


@router.get("/clientes/{cliente_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    cliente_id: RowId,
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
async def resend_turn(cliente_id: RowId, turn_id: BigRowId, session: Session) -> Resent:
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


@router.get("/status", response_model=StatusOut)
async def status_at_a_glance(ctx: Ctx, session: Session) -> StatusOut:
    """Live actors per node and per cliente, pending bursts, sends owed, last hour's failures."""
    return StatusOut.model_validate(await gather_status(session, ctx.supervisor))


@router.get("/clientes/{cliente_id}/contacts/{contact}/export", response_model=ContactExportOut)
async def export_contact(cliente_id: int, contact: Contact, ctx: Ctx) -> ContactExportOut:
    """LGPD access: everything the cliente holds about one contact, under any of their JIDs."""
    data = await ctx.privacy.export(cliente_id, contact, actor=OPERATOR)
    return ContactExportOut.model_validate(data)


@router.delete("/clientes/{cliente_id}/contacts/{contact}", response_model=ContactErased)
async def erase_contact(cliente_id: int, contact: Contact, ctx: Ctx) -> ContactErased:
    """LGPD erasure: the contact's conversations, messages, turns, owed replies, idempotency
    keys and lid pairs are deleted and their live actor forgets them; audited."""
    return ContactErased.model_validate(
        await ctx.privacy.erase(cliente_id, contact, actor=OPERATOR)
    )
