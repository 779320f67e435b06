"""The Portuguese (pt-BR) retrieval evaluation set in `bench/retrieval_data/`: load and check it.

Each business is a folder `<slug>/` with its knowledge documents in `docs/*.md` and its customer
questions in `questions.json` (format in `bench/retrieval_data/README.md`). Every expected answer
is a short exact substring of one section of one document, so relevance can be judged for any
chunking: a chunk is relevant to a question when `contains_answer(chunk, expected.answer)`.

`load_retrieval_dataset()` reads the folder and refuses it (`DatasetError`, listing every
problem) unless each answer really occurs in the section it names, each cross-tenant trap's
answer occurs in the other business's documents and nowhere in the asked business's, and each
business has enough questions. Pure apart from reading the files; no Ray, database or model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "retrieval_data"
MIN_QUESTIONS = 20
MIN_OUT_OF_SCOPE = 6
# An answer must fit well inside the smallest chunk measured (400 characters, section title
# included), or no chunk could ever be judged relevant.
MAX_ANSWER_CHARS = 150

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


class DatasetError(ValueError):
    """Raised when the evaluation set is malformed; the message lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("retrieval dataset is invalid:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Section:
    """The text under one heading, up to the next heading of any level."""

    heading: str
    level: int
    body: str


@dataclass(frozen=True)
class Document:
    name: str
    text: str
    sections: tuple[Section, ...]

    def section(self, heading: str) -> Section | None:
        return next((s for s in self.sections if s.heading == heading), None)


@dataclass(frozen=True)
class Expected:
    """Where the answer is: a document, the heading of its section, and an exact substring."""

    doc: str
    section: str
    answer: str


@dataclass(frozen=True)
class Question:
    q: str
    expected: Expected


@dataclass(frozen=True)
class CrossTenantTrap:
    """A question to one business whose answer exists only in `business`'s documents."""

    q: str
    business: str
    expected: Expected


@dataclass(frozen=True)
class Business:
    slug: str
    name: str
    kind: str
    documents: tuple[Document, ...]
    questions: tuple[Question, ...]
    out_of_scope: tuple[str, ...]
    cross_tenant: tuple[CrossTenantTrap, ...]

    def document(self, name: str) -> Document | None:
        return next((d for d in self.documents if d.name == name), None)

    @property
    def doc_chars(self) -> int:
        return sum(len(d.text) for d in self.documents)


@dataclass(frozen=True)
class RetrievalDataset:
    businesses: tuple[Business, ...]

    def business(self, slug: str) -> Business:
        for business in self.businesses:
            if business.slug == slug:
                return business
        raise KeyError(slug)


def normalize_space(text: str) -> str:
    """Runs of whitespace (line breaks included) as one space, trimmed."""
    return " ".join(text.split())


def contains_answer(text: str, answer: str) -> bool:
    """The relevance judgement: `answer` occurs in `text`, whitespace-insensitively."""
    return normalize_space(answer) in normalize_space(text)


def split_sections(markdown: str) -> tuple[Section, ...]:
    """The document's sections in order; text before the first heading is not a section."""
    sections: list[Section] = []
    heading: tuple[str, int] | None = None
    lines: list[str] = []
    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        if heading is not None:
            sections.append(Section(heading[0], heading[1], "\n".join(lines).strip()))
        heading, lines = (match.group(2).strip(), len(match.group(1))), []
    if heading is not None:
        sections.append(Section(heading[0], heading[1], "\n".join(lines).strip()))
    return tuple(sections)


def parse_document(name: str, text: str) -> Document:
    return Document(name=name, text=text, sections=split_sections(text))


def _expected(raw: Mapping[str, Any], where: str, problems: list[str]) -> Expected | None:
    keys = ("doc", "section", "answer")
    missing = [key for key in keys if not isinstance(raw.get(key), str) or not raw[key]]
    if missing:
        problems.append(f"{where}: missing or empty {', '.join(missing)}")
        return None
    doc, section, answer = (str(raw[key]) for key in keys)
    return Expected(doc=doc, section=section, answer=answer)


def _check_expected(
    expected: Expected, documents: Mapping[str, Document], where: str, problems: list[str]
) -> None:
    document = documents.get(expected.doc)
    if document is None:
        problems.append(f"{where}: no document {expected.doc!r}")
        return
    headings = [s.heading for s in document.sections]
    if headings.count(expected.section) != 1:
        count = headings.count(expected.section)
        problems.append(f"{where}: {expected.doc} has {count} sections named {expected.section!r}")
        return
    if len(normalize_space(expected.answer)) > MAX_ANSWER_CHARS:
        problems.append(f"{where}: answer longer than {MAX_ANSWER_CHARS} characters")
    section = document.section(expected.section)
    assert section is not None
    if not contains_answer(section.body, expected.answer):
        elsewhere = contains_answer(document.text, expected.answer)
        hint = " (it is in another section)" if elsewhere else ""
        place = f"{expected.doc} § {expected.section!r}"
        problems.append(f"{where}: answer {expected.answer!r} not in {place}{hint}")


def parse_business(
    slug: str, spec: Mapping[str, Any], docs: Mapping[str, str], problems: list[str]
) -> Business:
    """One business from its `questions.json` and `{file name: markdown}`; appends problems."""
    documents = {name: parse_document(name, text) for name, text in sorted(docs.items())}
    if not documents:
        problems.append(f"{slug}: no documents")
    for key in ("business", "kind"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            problems.append(f"{slug}: missing {key!r}")

    questions: list[Question] = []
    seen: set[str] = set()
    for i, raw in enumerate(spec.get("questions") or []):
        where = f"{slug} question {i} ({raw.get('q')!r})"
        q = raw.get("q")
        if not isinstance(q, str) or not q.strip():
            problems.append(f"{where}: empty question")
            continue
        if q in seen:
            problems.append(f"{where}: duplicate question")
        seen.add(q)
        expected = _expected(raw, where, problems)
        if expected is not None:
            _check_expected(expected, documents, where, problems)
            questions.append(Question(q=q, expected=expected))
    if len(questions) < MIN_QUESTIONS:
        problems.append(f"{slug}: {len(questions)} questions, at least {MIN_QUESTIONS} needed")

    out_of_scope = tuple(spec.get("out_of_scope") or [])
    if any(not isinstance(q, str) or not q.strip() for q in out_of_scope):
        problems.append(f"{slug}: an out-of-scope question is empty or not a string")
    if len(set(out_of_scope)) < MIN_OUT_OF_SCOPE:
        problems.append(
            f"{slug}: {len(set(out_of_scope))} distinct out-of-scope questions, "
            f"at least {MIN_OUT_OF_SCOPE} needed"
        )

    traps: list[CrossTenantTrap] = []
    for i, raw in enumerate(spec.get("cross_tenant") or []):
        where = f"{slug} cross-tenant trap {i} ({raw.get('q')!r})"
        other, expected = raw.get("business"), _expected(raw, where, problems)
        if not isinstance(raw.get("q"), str) or not raw["q"].strip():
            problems.append(f"{where}: empty question")
        elif not isinstance(other, str) or other == slug:
            problems.append(f"{where}: 'business' must name another business")
        elif expected is not None:
            traps.append(CrossTenantTrap(q=raw["q"], business=other, expected=expected))
    return Business(
        slug=slug,
        name=str(spec.get("business", "")),
        kind=str(spec.get("kind", "")),
        documents=tuple(documents.values()),
        questions=tuple(questions),
        out_of_scope=out_of_scope,
        cross_tenant=tuple(traps),
    )


def check_traps(businesses: tuple[Business, ...], problems: list[str]) -> None:
    """Each trap's answer is in the other business's section and in none of the asked one's docs."""
    by_slug = {b.slug: b for b in businesses}
    for business in businesses:
        for i, trap in enumerate(business.cross_tenant):
            where = f"{business.slug} cross-tenant trap {i} ({trap.q!r})"
            other = by_slug.get(trap.business)
            if other is None:
                problems.append(f"{where}: no business {trap.business!r}")
                continue
            documents = {d.name: d for d in other.documents}
            _check_expected(trap.expected, documents, f"{where} in {other.slug}", problems)
            if any(contains_answer(d.text, trap.expected.answer) for d in business.documents):
                problems.append(f"{where}: the answer is in {business.slug}'s own documents")


def load_retrieval_dataset(root: Path = DATA_DIR) -> RetrievalDataset:
    """Every business under `root` (folders with a `questions.json`), checked; or DatasetError."""
    problems: list[str] = []
    businesses: list[Business] = []
    for folder in sorted(p for p in root.iterdir() if (p / "questions.json").is_file()):
        try:
            spec = json.loads((folder / "questions.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problems.append(f"{folder.name}/questions.json: {e}")
            continue
        docs = {p.name: p.read_text(encoding="utf-8") for p in (folder / "docs").glob("*.md")}
        businesses.append(parse_business(folder.name, spec, docs, problems))
    if not businesses:
        problems.append(f"no business folders under {root}")
    check_traps(tuple(businesses), problems)
    if problems:
        raise DatasetError(problems)
    return RetrievalDataset(businesses=tuple(businesses))


if __name__ == "__main__":
    dataset = load_retrieval_dataset()
    for b in dataset.businesses:
        print(
            f"{b.slug:30} {b.kind:36} docs={len(b.documents)} chars={b.doc_chars:6} "
            f"q={len(b.questions):3} oos={len(b.out_of_scope)} traps={len(b.cross_tenant)}"
        )
