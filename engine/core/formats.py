"""The document formats a cliente can upload, recognised by Content-Type or file extension."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath


class DocumentFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    PDF = "pdf"
    DOCX = "docx"
    CSV = "csv"  # question–answer pairs, one per row
    XLSX = "xlsx"  # question–answer pairs, one per row of each sheet


CONTENT_TYPES: dict[str, DocumentFormat] = {
    "text/plain": DocumentFormat.TEXT,
    "text/markdown": DocumentFormat.MARKDOWN,
    "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/html": DocumentFormat.HTML,
    "application/pdf": DocumentFormat.PDF,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        DocumentFormat.DOCX
    ),
    "text/csv": DocumentFormat.CSV,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": DocumentFormat.XLSX,
}
EXTENSIONS: dict[str, DocumentFormat] = {
    ".txt": DocumentFormat.TEXT,
    ".md": DocumentFormat.MARKDOWN,
    ".markdown": DocumentFormat.MARKDOWN,
    ".html": DocumentFormat.HTML,
    ".htm": DocumentFormat.HTML,
    ".pdf": DocumentFormat.PDF,
    ".docx": DocumentFormat.DOCX,
    ".csv": DocumentFormat.CSV,
    ".xlsx": DocumentFormat.XLSX,
}
# Types that say nothing about the content: the title's extension decides.
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def supported_types() -> str:
    """The list a 415 answer gives."""
    return (
        ", ".join(CONTENT_TYPES)
        + " (or application/octet-stream with a title ending in "
        + (", ".join(EXTENSIONS) + ")")
    )


def detect_format(content_type: str, title: str) -> DocumentFormat | None:
    """The upload's format from its Content-Type, or from the title's extension when the type is
    generic (or plain text for a .md/.csv file, as many clients send); None = unsupported."""
    media = content_type.split(";")[0].strip().lower()
    by_extension = EXTENSIONS.get(PurePosixPath(title.lower()).suffix)
    if media in GENERIC_TYPES:
        return by_extension
    by_type = CONTENT_TYPES.get(media)
    if by_type is DocumentFormat.TEXT and by_extension in (
        DocumentFormat.MARKDOWN,
        DocumentFormat.CSV,
    ):
        return by_extension
    return by_type
