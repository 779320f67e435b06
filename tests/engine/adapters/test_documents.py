"""Uploads of every supported format become Markdown that keeps their headings (engine/adapters/
documents.py), from small files the tests generate themselves."""

from __future__ import annotations

import pytest

from engine.adapters.documents import to_markdown
from engine.core.chunking import chunk_document
from engine.core.formats import DocumentFormat
from engine.errors import InvalidInput
from tests.support.documents import make_csv, make_docx, make_html, make_pdf, make_xlsx

QA_ROWS = [
    ["Pergunta", "Resposta"],
    ["Vocês entregam em Campinas?", "Sim, entregamos em toda Campinas em até 2 dias úteis."],
    ["Aceitam Pix?", "Sim, Pix com 5% de desconto."],
]


def test_a_pdf_keeps_its_text_and_accents() -> None:
    pdf = make_pdf(["Horário de atendimento", "Abrimos de segunda a sábado, das 9h às 18h."])

    text = to_markdown(pdf, DocumentFormat.PDF)

    assert "Horário de atendimento" in text
    assert "Abrimos de segunda a sábado, das 9h às 18h." in text


def test_a_docx_turns_its_title_and_headings_into_markdown_headings() -> None:
    docx = make_docx(
        [("Entregas", ["Entregamos em até 2 dias úteis."]), ("Pagamento", ["Aceitamos Pix."])],
        title="Guia da loja",
    )

    text = to_markdown(docx, DocumentFormat.DOCX)

    assert text.splitlines()[0] == "# Guia da loja"
    assert "## Entregas\n\nEntregamos em até 2 dias úteis." in text
    assert "## Pagamento\n\nAceitamos Pix." in text


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        pytest.param(make_xlsx(QA_ROWS), DocumentFormat.XLSX, id="xlsx"),
        pytest.param(make_csv(QA_ROWS), DocumentFormat.CSV, id="csv-comma"),
        pytest.param(make_csv(QA_ROWS, delimiter=";"), DocumentFormat.CSV, id="csv-semicolon"),
    ],
)
def test_a_spreadsheet_of_questions_and_answers_becomes_one_section_per_question(
    raw: bytes, fmt: DocumentFormat
) -> None:
    text = to_markdown(raw, fmt)

    assert "Pergunta" not in text  # the header row is not a question
    chunks = chunk_document(text)
    assert [c.section for c in chunks] == ["Vocês entregam em Campinas?", "Aceitam Pix?"]
    assert chunks[1].text == "Aceitam Pix?\nSim, Pix com 5% de desconto."


def test_html_keeps_headings_and_drops_what_a_reader_never_sees() -> None:
    html = make_html("Loja Azul", [("Trocas", "Trocas em até 30 dias com a nota.")])

    text = to_markdown(html, DocumentFormat.HTML)

    assert text.startswith("# Loja Azul")
    assert "## Trocas\n\nTrocas em até 30 dias com a nota." in text
    assert "var x" not in text and "color: red" not in text


def test_text_and_markdown_are_read_as_utf8() -> None:
    assert to_markdown("## Preços\n\nR$ 10,00".encode(), DocumentFormat.MARKDOWN) == (
        "## Preços\n\nR$ 10,00"
    )
    with pytest.raises(InvalidInput, match="UTF-8"):
        to_markdown("preço".encode("latin-1"), DocumentFormat.TEXT)


@pytest.mark.parametrize(
    ("raw", "fmt", "reason"),
    [
        pytest.param(b"%PDF-1.7 broken", DocumentFormat.PDF, "could not read", id="broken-pdf"),
        pytest.param(b"PK\x03\x04 not a zip", DocumentFormat.DOCX, "could not read", id="bad-docx"),
        pytest.param(make_pdf([]), DocumentFormat.PDF, "no text", id="pdf-without-text"),
        pytest.param(
            make_csv([["só uma coluna"]]), DocumentFormat.CSV, "question, answer", id="one-column"
        ),
    ],
)
def test_an_unreadable_document_is_refused_with_a_reason(
    raw: bytes, fmt: DocumentFormat, reason: str
) -> None:
    with pytest.raises(InvalidInput, match=reason):
        to_markdown(raw, fmt)
