"""Which uploads Conversa reads, by Content-Type or by the title's extension (engine/core/
formats.py)."""

from __future__ import annotations

import pytest

from engine.core.formats import DocumentFormat, detect_format, supported_types

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize(
    ("content_type", "title", "expected"),
    [
        ("text/plain; charset=utf-8", "faq", DocumentFormat.TEXT),
        ("text/markdown", "faq", DocumentFormat.MARKDOWN),
        ("text/plain", "faq.md", DocumentFormat.MARKDOWN),
        ("text/plain", "perguntas.csv", DocumentFormat.CSV),
        ("application/pdf", "cardapio", DocumentFormat.PDF),
        (DOCX_TYPE, "guia", DocumentFormat.DOCX),
        ("application/octet-stream", "Guia.DOCX", DocumentFormat.DOCX),
        ("", "tabela.xlsx", DocumentFormat.XLSX),
        ("text/html", "site", DocumentFormat.HTML),
        ("image/png", "foto.png", None),
        ("application/octet-stream", "sem-extensao", None),
        ("application/msword", "antigo.doc", None),
    ],
)
def test_format_is_detected_from_type_then_extension(
    content_type: str, title: str, expected: DocumentFormat | None
) -> None:
    assert detect_format(content_type, title) is expected


def test_the_supported_list_names_every_type_and_extension() -> None:
    listed = supported_types()
    for name in ("application/pdf", DOCX_TYPE, "text/csv", "text/html", ".xlsx", ".md"):
        assert name in listed
