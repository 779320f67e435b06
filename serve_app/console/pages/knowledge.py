"""Conhecimento: upload (drag and drop, several at once, per-document progress), the list with
status and chunk counts (polled while anything is being ingested), delete one, delete all, and a
test question showing the passages a reply would use. The same `Knowledge` service as /v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from engine.core.statuses import DocumentStatus
from engine.db import knowledge as knowledge_db
from engine.db.models import KnowledgeDocument
from serve_app.console.web import PREFIX, CsrfChecked, CurrentViewer, render
from serve_app.deps import upload_body
from serve_app.schemas import RowId

router = APIRouter(prefix="/conhecimento")
PAGE = f"{PREFIX}/conhecimento"


async def _documents(request: Request, cliente_id: int) -> list[KnowledgeDocument]:
    async with request.app.state.ctx.sessions() as db:
        return await knowledge_db.list_documents(db, cliente_id)


@router.get("")
async def page(request: Request, viewer: CurrentViewer) -> Response:
    documents = await _documents(request, viewer.cliente_id)
    return await render(
        request, "knowledge.html", viewer, page="knowledge", documents=documents, **_live(documents)
    )


@router.get("/documentos")
async def documents_fragment(request: Request, viewer: CurrentViewer) -> Response:
    documents = await _documents(request, viewer.cliente_id)
    return await render(request, "_documents.html", viewer, documents=documents, **_live(documents))


def _live(documents: list[KnowledgeDocument]) -> dict[str, bool]:
    """Keep polling only while a document is still being embedded."""
    return {"ingesting": any(d.status is DocumentStatus.PROCESSANDO for d in documents)}


@router.post("/documentos", dependencies=[CsrfChecked])
async def upload(
    request: Request,
    viewer: CurrentViewer,
    title: Annotated[str, Query(min_length=1, max_length=300)],
) -> Response:
    """One file per request, as the raw body (the page's script sends each dropped file with
    upload progress); answers the refreshed list, which then polls the ingestion."""
    ctx = request.app.state.ctx
    await ctx.knowledge.receive(
        viewer.cliente_id,
        title=title,
        content_type=request.headers.get("content-type", ""),
        raw=await upload_body(request, ctx),
        wait=False,
    )
    return await documents_fragment(request, viewer)


@router.post("/documentos/{document_id}/apagar", dependencies=[CsrfChecked])
async def delete_one(document_id: RowId, request: Request, viewer: CurrentViewer) -> Response:
    await request.app.state.ctx.knowledge.delete_document(viewer.cliente_id, document_id)
    return RedirectResponse(PAGE, status_code=303)


@router.post("/apagar-tudo", dependencies=[CsrfChecked])
async def delete_all(request: Request, viewer: CurrentViewer) -> Response:
    """Stops ingestions in progress too: the person confirmed deleting everything."""
    await request.app.state.ctx.knowledge.deletar_vectorstore_cliente(viewer.cliente_id, force=True)
    return RedirectResponse(PAGE, status_code=303)


@router.post("/perguntar", dependencies=[CsrfChecked])
async def ask(
    request: Request,
    viewer: CurrentViewer,
    question: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    ctx = request.app.state.ctx
    passages = await ctx.knowledge.preview(
        viewer.cliente_id, question, k=ctx.settings.retrieval_top_k
    )
    return await render(request, "_passages.html", viewer, passages=passages, question=question)
