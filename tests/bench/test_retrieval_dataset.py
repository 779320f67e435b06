"""The retrieval evaluation set (bench/retrieval_dataset.py over bench/retrieval_data/).

The committed set must load: every expected answer really is in the section it names, so the
benchmark's relevance judgements mean something. Tampered copies in a temporary folder must be
refused with a message that names the question.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.retrieval_dataset import (
    DATA_DIR,
    MIN_OUT_OF_SCOPE,
    MIN_QUESTIONS,
    DatasetError,
    contains_answer,
    load_retrieval_dataset,
    split_sections,
)

PET_SHOP = "pet-shop-patinhas"


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    root = tmp_path / "retrieval_data"
    shutil.copytree(DATA_DIR, root)
    return root


def edit_questions(root: Path, slug: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = root / slug / "questions.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    edit(spec)
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def test_committed_set_loads_with_enough_businesses_questions_and_traps() -> None:
    dataset = load_retrieval_dataset()
    assert len(dataset.businesses) >= 6
    assert len({b.kind for b in dataset.businesses}) == len(dataset.businesses)
    for business in dataset.businesses:
        assert len(business.questions) >= MIN_QUESTIONS, business.slug
        assert len(set(business.out_of_scope)) >= MIN_OUT_OF_SCOPE, business.slug
        assert 2 <= len(business.documents) <= 4, business.slug
    assert sum(len(b.cross_tenant) for b in dataset.businesses) >= 6


def test_every_expected_answer_is_in_its_section_of_its_document() -> None:
    for business in load_retrieval_dataset().businesses:
        for question in business.questions:
            document = business.document(question.expected.doc)
            assert document is not None
            section = document.section(question.expected.section)
            assert section is not None
            assert contains_answer(section.body, question.expected.answer), question.q


def test_an_answer_that_is_not_in_the_document_is_refused(data_copy: Path) -> None:
    def corrupt(spec: dict[str, Any]) -> None:
        spec["questions"][0]["answer"] = "R$ 9.999,00 por banho"

    edit_questions(data_copy, PET_SHOP, corrupt)
    with pytest.raises(DatasetError) as error:
        load_retrieval_dataset(data_copy)
    assert "R$ 9.999,00 por banho" in str(error.value)
    assert len(error.value.problems) == 1


def test_an_answer_under_the_wrong_heading_is_refused_with_a_hint(data_copy: Path) -> None:
    def move(spec: dict[str, Any]) -> None:
        spec["questions"][0]["section"] = "Pacotes mensais"

    edit_questions(data_copy, PET_SHOP, move)
    with pytest.raises(DatasetError, match="in another section"):
        load_retrieval_dataset(data_copy)


def test_unknown_document_or_heading_is_refused(data_copy: Path) -> None:
    def break_two(spec: dict[str, Any]) -> None:
        spec["questions"][0]["doc"] = "nao-existe.md"
        spec["questions"][1]["section"] = "Seção inventada"

    edit_questions(data_copy, PET_SHOP, break_two)
    with pytest.raises(DatasetError) as error:
        load_retrieval_dataset(data_copy)
    message = str(error.value)
    assert "no document 'nao-existe.md'" in message
    assert "0 sections named 'Seção inventada'" in message


def test_too_few_questions_is_refused(data_copy: Path) -> None:
    def trim(spec: dict[str, Any]) -> None:
        spec["questions"] = spec["questions"][: MIN_QUESTIONS - 1]
        spec["out_of_scope"] = spec["out_of_scope"][:2]

    edit_questions(data_copy, PET_SHOP, trim)
    with pytest.raises(DatasetError) as error:
        load_retrieval_dataset(data_copy)
    assert f"{MIN_QUESTIONS - 1} questions" in str(error.value)
    assert "2 distinct out-of-scope" in str(error.value)


def test_a_trap_whose_answer_is_in_the_asked_business_is_refused(data_copy: Path) -> None:
    docs = data_copy / "clinica-sorriso-vivo" / "docs" / "faq.md"
    docs.write_text(
        docs.read_text(encoding="utf-8") + "\n## Banho\n\nShih-tzu, lhasa, maltês | R$ 65,00 | "
        "R$ 95,00\n",
        encoding="utf-8",
    )
    with pytest.raises(DatasetError, match="in clinica-sorriso-vivo's own documents"):
        load_retrieval_dataset(data_copy)


def test_a_trap_pointing_at_an_unknown_business_is_refused(data_copy: Path) -> None:
    def retarget(spec: dict[str, Any]) -> None:
        spec["cross_tenant"][0]["business"] = "padaria-inexistente"

    edit_questions(data_copy, PET_SHOP, retarget)
    with pytest.raises(DatasetError, match="no business 'padaria-inexistente'"):
        load_retrieval_dataset(data_copy)


def test_sections_run_from_a_heading_to_the_next_heading_of_any_level() -> None:
    sections = split_sections(
        "intro sem título\n# Título\nTopo\n## Preços\n| a | R$ 1 |\n\n### Extras ##\nmais\n"
    )
    assert [(s.heading, s.level, s.body) for s in sections] == [
        ("Título", 1, "Topo"),
        ("Preços", 2, "| a | R$ 1 |"),
        ("Extras", 3, "mais"),
    ]


@pytest.mark.parametrize(
    ("text", "answer", "expected"),
    [
        ("entrega no mesmo dia para\npedidos feitos até as 15h", "dia para pedidos feitos", True),
        ("Taxa   de R$ 15,00", "Taxa de R$ 15,00", True),
        ("Taxa de R$ 15,00", "taxa de R$ 15,00", False),
        ("Taxa de R$ 15,00", "Taxa de R$ 15,00 (ida", False),
    ],
)
def test_relevance_ignores_whitespace_but_not_case_or_missing_words(
    text: str, answer: str, expected: bool
) -> None:
    assert contains_answer(text, answer) is expected
