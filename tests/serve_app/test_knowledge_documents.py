"""Documents people actually have, through the operator API on the real stack: every format is
converted, chunked by section and searchable (hybrid search in the cliente's retriever), an
unsupported type is refused with the list, a re-upload under the same title replaces the old
text, and deleting one document takes its rows and vectors with it."""

from __future__ import annotations

from typing import Any

import pytest

from engine.actors.retriever import RetrieverClient
from engine.config import Settings
from engine.wiring import retriever_config
from tests.support.documents import make_csv, make_docx, make_html, make_pdf, make_xlsx
from tests.support.tenants import MakeTenant, TenantHandle
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# (title, content type, body, a customer's question, a fact the right passage holds, its section)
UPLOADS = [
    (
        "horarios.pdf",
        "application/pdf",
        make_pdf(["Horário da loja", "Abrimos de segunda a sábado, das 9h às 18h."]),
        "que horas vcs abrem no sabado",
        "das 9h às 18h",
        "",
    ),
    (
        "trocas.docx",
        DOCX_TYPE,
        make_docx([("Trocas e devoluções", ["Trocas em até 30 dias com a etiqueta."])]),
        "posso devolver a roupa? qual o prazo pra troca",
        "30 dias",
        "Trocas e devoluções",
    ),
    (
        "entregas.html",
        "text/html",
        make_html("Entregas", [("Frete", "Frete grátis acima de R$ 299,00 para todo o Brasil.")]),
        "o frete e gratis a partir de qto?",
        "R$ 299,00",
        "Entregas > Frete",
    ),
    (
        "pagamento.md",
        "text/markdown",
        b"# Pagamento\n\nParcelamos em ate 6x sem juros no cartao de credito.",
        "parcela no cartao em quantas vezes",
        "6x sem juros",
        "Pagamento",
    ),
    (
        "endereco.txt",
        "text/plain",
        "Nossa loja fica na Rua das Acácias, 120, no Cambuí.".encode(),
        "onde fica a loja fisica? endereço",
        "Rua das Acácias, 120",
        "",
    ),
    (
        "faq.csv",
        "text/csv",
        make_csv([["Pergunta", "Resposta"], ["Tem provador?", "Sim, temos 4 provadores."]]),
        "da pra provar as roupas ai",
        "4 provadores",
        "Tem provador?",
    ),
    (
        "faq.xlsx",
        XLSX_TYPE,
        make_xlsx([["Pergunta", "Resposta"], ["Vocês fazem ajuste de barra?", "Sim, R$ 25,00."]]),
        "vcs fazem barra de calca? quanto",
        "R$ 25,00",
        "Vocês fazem ajuste de barra?",
    ),
]


async def _upload(
    tenant: TenantHandle, title: str, content_type: str, body: bytes, *, wait: bool = True
) -> Any:
    return await tenant.api.post(
        f"/admin/clientes/{tenant.id}/documents",
        params={"title": title, "wait": str(wait).lower()},
        content=body,
        headers={"Content-Type": content_type},
    )


async def _search(settings: Settings, tenant: TenantHandle, question: str) -> list[Any]:
    passages: list[Any] = await RetrieverClient(tenant.id, retriever_config(settings)).call(
        "search", question, 4
    )
    return passages


async def _stats(tenant: TenantHandle) -> dict[str, Any]:
    response = await tenant.api.get(f"/admin/clientes/{tenant.id}/knowledge")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_every_supported_format_is_searchable_with_its_title_and_section(
    make_tenant: MakeTenant, settings: Settings
) -> None:
    tenant = await make_tenant()
    for title, content_type, body, *_ in UPLOADS:
        response = await _upload(tenant, title, content_type, body)
        assert response.status_code == 200, (title, response.text)
        assert response.json()["status"] == "PRONTO", title
        assert response.json()["chunks_total"] >= 1

    for title, _, _, question, fact, section in UPLOADS:
        [best, *_] = await _search(settings, tenant, question)
        assert best.title == title, (question, best)
        assert fact in best.text and best.section == section
    stats = await _stats(tenant)
    assert stats["documents"] == len(UPLOADS)
    assert stats["vectors"] == stats["chunks"] == stats["chunks_embedded"] >= len(UPLOADS)


async def test_an_unsupported_type_is_refused_with_the_supported_list(
    make_tenant: MakeTenant,
) -> None:
    tenant = await make_tenant()
    response = await _upload(tenant, "foto.png", "image/png", b"\x89PNG\r\n\x1a\n")

    assert response.status_code == 415
    for supported in ("application/pdf", DOCX_TYPE, "text/csv", XLSX_TYPE, "text/html"):
        assert supported in response.json()["detail"]
    assert (await tenant.api.get(f"/admin/clientes/{tenant.id}/documents")).json() == []


async def test_an_octet_stream_upload_is_read_by_its_extension(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    body = make_docx([("Garantia", ["Garantia de 90 dias."])])
    response = await _upload(tenant, "garantia.docx", "application/octet-stream", body)
    assert response.status_code == 200 and response.json()["content_type"] == "docx"


async def test_reuploading_a_title_replaces_its_text_once_the_new_one_is_ready(
    make_tenant: MakeTenant, settings: Settings
) -> None:
    tenant = await make_tenant()
    old = await _upload(tenant, "horario.md", "text/markdown", b"## Horario\n\nAbrimos as 8h.")
    new = await _upload(tenant, "horario.md", "text/markdown", b"## Horario\n\nAbrimos as 10h.")
    assert old.status_code == new.status_code == 200
    assert new.json()["id"] != old.json()["id"]

    listed = (await tenant.api.get(f"/admin/clientes/{tenant.id}/documents")).json()
    assert [d["id"] for d in listed] == [new.json()["id"]]
    texts = " ".join(p.text for p in await _search(settings, tenant, "que horas abre"))
    assert "10h" in texts and "8h" not in texts
    stats = await _stats(tenant)
    assert stats["documents"] == 1 and stats["vectors"] == stats["chunks"] == 1


async def test_deleting_one_document_removes_its_rows_and_vectors(
    make_tenant: MakeTenant, settings: Settings
) -> None:
    tenant = await make_tenant()
    keep = await _upload(tenant, "pix.md", "text/markdown", b"Aceitamos Pix e boleto.")
    gone = await _upload(tenant, "frete.md", "text/markdown", b"O frete para Campinas e R$ 9.")

    response = await tenant.api.delete(f"/admin/clientes/{tenant.id}/documents/{gone.json()['id']}")
    assert response.status_code == 204
    missing = await tenant.api.get(f"/admin/clientes/{tenant.id}/documents/{gone.json()['id']}")
    assert missing.status_code == 404
    again = await tenant.api.delete(f"/admin/clientes/{tenant.id}/documents/{gone.json()['id']}")
    assert again.status_code == 404

    passages = await _search(settings, tenant, "qual o frete pra campinas")
    assert {p.document_id for p in passages} == {keep.json()["id"]}
    stats = await _stats(tenant)
    assert stats == {**stats, "documents": 1, "chunks": 1, "vectors": 1}


async def test_one_clientes_search_never_returns_another_clientes_document(
    make_tenant: MakeTenant, settings: Settings
) -> None:
    mine, theirs = await make_tenant(), await make_tenant()
    await _upload(theirs, "segredo.md", "text/markdown", b"O cupom secreto e AZUL50.")
    await _upload(mine, "loja.md", "text/markdown", b"Vendemos roupas femininas.")

    passages = await _search(settings, mine, "qual o cupom secreto AZUL50")
    assert all("AZUL50" not in p.text for p in passages)


async def _ready(tenant: TenantHandle, document_id: int):  # type: ignore[no-untyped-def]
    document = (await tenant.api.get(f"/admin/clientes/{tenant.id}/documents/{document_id}")).json()
    return document if document["status"] != "PROCESSANDO" else None


async def test_wait_false_answers_202_and_progress_reaches_ready(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    body = "\n\n".join(f"## Item {i}\n\nO item {i} custa R$ {i},00." for i in range(40)).encode()
    response = await _upload(tenant, "itens.md", "text/markdown", body, wait=False)
    assert response.status_code == 202 and response.json()["chunks_total"] == 40

    document = await eventually(lambda: _ready(tenant, response.json()["id"]), timeout_s=60)
    assert document["status"] == "PRONTO" and document["chunks_done"] == 40
