"""The business's knowledge: upload, list and delete documents."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from engine.core.formats import CONTENT_TYPES
from engine.core.naming import get_collection_name
from engine.db import knowledge as knowledge_db
from serve_app.deps import Ctx, Session, Tenant, upload_body
from serve_app.schemas import (
    DocumentOut,
    ErrorBody,
    KnowledgeDeleted,
    KnowledgeQuestion,
    PassageOut,
    RowId,
)

router = APIRouter(tags=["tenant: knowledge"])


@router.post(
    "/documents",
    response_model=DocumentOut,
    responses={
        202: {"model": DocumentOut, "description": "stored; being embedded (poll its progress)"},
        413: {"model": ErrorBody, "description": "over MAX_UPLOAD_BYTES"},
        415: {"model": ErrorBody, "description": "a type Conversa cannot read (lists those)"},
        422: {"model": ErrorBody, "description": "empty, unreadable or broken document"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in (*CONTENT_TYPES, "application/octet-stream")
            },
        }
    },
)
async def upload_document(
    request: Request,
    response: Response,
    tenant: Tenant,
    ctx: Ctx,
    title: str = Query(..., min_length=1, max_length=300),
    wait: bool = Query(False, description="Answer only when the document is searchable."),
) -> DocumentOut:
    """Upload a document as the raw body (PDF, DOCX, HTML, Markdown, text, or CSV/XLSX of
    question–answer pairs): 202 while it is embedded, 200 when ready (or when the same text
    was already there). A new text under an existing title replaces that document."""
    document, ready = await ctx.knowledge.receive(
        tenant.cliente_id,
        title=title,
        content_type=request.headers.get("content-type", ""),
        raw=await upload_body(request, ctx),
        wait=wait,
    )
    response.status_code = status.HTTP_200_OK if ready else status.HTTP_202_ACCEPTED
    return DocumentOut.model_validate(document)


@router.get("/documents", response_model=list[DocumentOut])
async def list_documents(tenant: Tenant, session: Session) -> list[DocumentOut]:
    """Every document with its ingestion progress (`chunks_done` / `chunks_total`)."""
    documents = await knowledge_db.list_documents(session, tenant.cliente_id)
    return [DocumentOut.model_validate(d) for d in documents]


@router.get("/documents/{document_id}", response_model=DocumentOut)
async def get_document(document_id: RowId, tenant: Tenant, session: Session) -> DocumentOut:
    return DocumentOut.model_validate(
        await knowledge_db.get_document(session, tenant.cliente_id, document_id)
    )


@router.delete(
    "/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_document(document_id: RowId, tenant: Tenant, ctx: Ctx) -> Response:
    """Delete one document: its chunks and vectors go with it (an ingestion in progress
    stops)."""
    await ctx.knowledge.delete_document(tenant.cliente_id, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/knowledge",
    response_model=KnowledgeDeleted,
    responses={409: {"model": ErrorBody, "description": "documents still being ingested"}},
)
async def delete_knowledge(
    tenant: Tenant,
    ctx: Ctx,
    force: bool = Query(False, description="Also stop ingestions in progress."),
) -> KnowledgeDeleted:
    """Delete all the business's knowledge (its collection, documents and chunks); 409 while
    documents are being ingested, unless `force=true`."""
    deleted = await ctx.knowledge.deletar_vectorstore_cliente(tenant.cliente_id, force=force)
    return KnowledgeDeleted(
        collection=get_collection_name(tenant.cliente_id), documents_deleted=deleted
    )


@router.post("/knowledge/search", response_model=list[PassageOut])
async def search_knowledge(body: KnowledgeQuestion, tenant: Tenant, ctx: Ctx) -> list[PassageOut]:
    """A test question: the passages a reply to it would be given, best first (the same hybrid
    search the bot uses; the relevance gate then decides whether they can answer)."""
    k = body.k or ctx.settings.retrieval_top_k
    passages = await ctx.knowledge.preview(tenant.cliente_id, body.question, k=k)
    return [PassageOut.model_validate(p, from_attributes=True) for p in passages]
