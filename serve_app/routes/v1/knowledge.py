"""The business's knowledge: upload, list and delete documents."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from engine.core.naming import get_collection_name
from engine.db import knowledge as knowledge_db
from serve_app.deps import Ctx, Session, Tenant
from serve_app.schemas import DocumentOut, ErrorBody, KnowledgeDeleted, RowId

router = APIRouter(tags=["tenant: knowledge"])


@router.post(
    "/documents",
    response_model=DocumentOut,
    responses={
        202: {"model": DocumentOut, "description": "stored; being embedded (poll its progress)"},
        409: {"model": ErrorBody, "description": "still being ingested"},
        413: {"model": ErrorBody, "description": "over 5 MB"},
        415: {"model": ErrorBody, "description": "not text/plain or text/markdown"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
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
    """Upload a text/markdown document (the raw body, ≤ 5 MB): 202 while it is embedded, 200
    when ready (or when the same text was already there)."""
    document, ready = await ctx.knowledge.upload(
        tenant.cliente_id,
        title=title,
        content_type=request.headers.get("content-type"),
        raw=await request.body(),
        wait=wait,
        spawn=lambda work, context: ctx.spawn(work, what="ingestion", context=context),
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
    responses={409: {"model": ErrorBody, "description": "still being ingested"}},
)
async def delete_document(document_id: RowId, tenant: Tenant, ctx: Ctx) -> Response:
    """Delete one document: it is no longer used in replies."""
    await ctx.knowledge.delete_document(tenant.cliente_id, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/knowledge", response_model=KnowledgeDeleted)
async def delete_knowledge(tenant: Tenant, ctx: Ctx) -> KnowledgeDeleted:
    """Delete all the business's knowledge (its collection and documents)."""
    deleted = await ctx.knowledge.deletar_vectorstore_cliente(tenant.cliente_id)
    return KnowledgeDeleted(
        collection=get_collection_name(tenant.cliente_id), documents_deleted=deleted
    )
