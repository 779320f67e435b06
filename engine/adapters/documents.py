"""Uploaded documents converted to Markdown, the one form chunking reads (headings become `#`).

Libraries (measured in the README, "Documents"): `pypdf` for PDF, `python-docx` for DOCX,
`openpyxl` for XLSX, `markdownify` (BeautifulSoup) for HTML; CSV and text with the standard
library. Spreadsheets are question–answer pairs: each row becomes a section titled with its
question, so the question travels with every chunk of its answer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from engine.core.formats import DocumentFormat
from engine.errors import InvalidInput

_QA_HEADERS = frozenset({"pergunta", "question", "q", "duvida", "dúvida"})
_BLANKS = re.compile(r"\n{3,}")


def to_markdown(raw: bytes, fmt: DocumentFormat) -> str:
    """The document's text as Markdown; InvalidInput (422) when it cannot be read as `fmt`."""
    try:
        text = _CONVERTERS[fmt](raw)
    except InvalidInput:
        raise
    except Exception as e:  # every library has its own errors for a broken file
        raise InvalidInput(f"could not read the document as {fmt.value}: {e}") from e
    text = _BLANKS.sub("\n\n", text.replace("\r\n", "\n")).strip()
    if not text:
        raise InvalidInput(f"the {fmt.value} document has no text (a scanned PDF needs OCR first)")
    return text


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput("text documents must be UTF-8") from e


def _html(raw: bytes) -> str:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(_decode(raw), "html.parser")
    for hidden in soup(["head", "script", "style", "noscript", "template", "svg"]):
        hidden.decompose()  # not text a reader sees
    return str(MarkdownConverter(heading_style="ATX", strip=["img"]).convert_soup(soup))


def _pdf(raw: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)


def _docx(raw: bytes) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(raw))
    out: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            out.append(_docx_paragraph(block.text.strip(), block.style.name if block.style else ""))
        elif isinstance(block, Table):
            out.append(_markdown_table([[c.text.strip() for c in r.cells] for r in block.rows]))
    return "\n\n".join(part for part in out if part)


def _docx_paragraph(text: str, style: str) -> str:
    if not text:
        return ""
    if style == "Title":
        return f"# {text}"
    if style.startswith("Heading "):
        level = style.removeprefix("Heading ").strip()
        return f"{'#' * min(int(level), 6) if level.isdigit() else '#'} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _markdown_table(rows: Sequence[Sequence[str]]) -> str:
    rows = [[" ".join(c.split()).replace("|", "/") for c in row] for row in rows if any(row)]
    if not rows:
        return ""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _csv(raw: bytes) -> str:
    text = _decode(raw)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return _qa_pairs(csv.reader(io.StringIO(text), dialect))


def _xlsx(raw: bytes) -> str:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    try:
        sheets = [
            _qa_pairs(
                [
                    ["" if v is None else str(v) for v in row]
                    for row in sheet.iter_rows(values_only=True)
                ]
            )
            for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()
    return "\n\n".join(sheet for sheet in sheets if sheet)


def _cells(row: Sequence[Any]) -> list[str]:
    return ["" if value is None else str(value) for value in row]


def _qa_pairs(rows: Iterable[Sequence[str]]) -> str:
    """Rows of (question, answer, extra columns…) as sections "## question" + answer; a header
    row (Pergunta/Resposta, Question/Answer) is skipped."""
    out: list[str] = []
    for index, row in enumerate(rows):
        cells = [" ".join(str(c).split()) for c in row]
        cells = [c for c in cells if c]
        if len(cells) < 2:
            continue
        if index == 0 and cells[0].lower().rstrip("s?: ") in _QA_HEADERS:
            continue
        question, answer = cells[0], " ".join(cells[1:])
        out.append(f"## {question}\n\n{answer}")
    if not out:
        raise InvalidInput("a spreadsheet needs rows of question, answer (two columns at least)")
    return "\n\n".join(out)


_CONVERTERS = {
    DocumentFormat.TEXT: _decode,
    DocumentFormat.MARKDOWN: _decode,
    DocumentFormat.HTML: _html,
    DocumentFormat.PDF: _pdf,
    DocumentFormat.DOCX: _docx,
    DocumentFormat.CSV: _csv,
    DocumentFormat.XLSX: _xlsx,
}
