"""Chunking of knowledge documents (engine/chunking.py).

Property checks run over seeded pseudo-random documents (stdlib `random`, so every run sees the
same inputs and a failure names its seed), plus fixed cases and a realistic Portuguese FAQ.
"""

from __future__ import annotations

import itertools
import random
import re
import string

import pytest

from engine.core.chunking import chunk_text

# --------------------------------------------------------------------------- helpers


def words_of(text: str) -> list[str]:
    return text.split()


def normalized(text: str) -> str:
    return " ".join(text.split())


def decompositions(text: str, chunks: list[str], overlap: int) -> set[int]:
    """Ways to read `chunks` as the input's words in order, each chunk after the first starting
    with at most `overlap` characters of whole words repeated from the end of the previous one.

    Returns the set of input-word positions reachable after the last chunk; the chunks cover the
    input exactly when `len(words_of(text))` is in it. (A set, because repeated words can make the
    overlap ambiguous.)
    """
    words = words_of(text)
    states = {0}
    previous: list[str] = []
    for chunk in chunks:
        tokens = words_of(chunk)
        reached: set[int] = set()
        for position in states:
            for carried in range(min(len(tokens) - 1, len(previous)) + 1):
                if carried:
                    head = tokens[:carried]
                    if head != previous[-carried:] or len(" ".join(head)) > overlap:
                        continue
                rest = tokens[carried:]
                if words[position : position + len(rest)] == rest:
                    reached.add(position + len(rest))
        states = reached
        previous = tokens
    return states


def assert_covers_in_order(text: str, chunks: list[str], overlap: int) -> None:
    assert len(words_of(text)) in decompositions(text, chunks, overlap), chunks


def carried_counts(chunks: list[str], words: list[str]) -> list[int]:
    """For input made of distinct words: how many leading words of each chunk (after the first)
    repeat the previous chunk. Also asserts that what follows them continues the input exactly."""
    index = {word: i for i, word in enumerate(words)}
    assert len(index) == len(words), "helper needs distinct words"
    counts = []
    last = max(index[w] for w in words_of(chunks[0]))
    for chunk in chunks[1:]:
        positions = [index[w] for w in words_of(chunk)]
        carried = sum(1 for p in positions if p <= last)
        assert positions[carried:] == list(range(last + 1, last + 1 + len(positions) - carried))
        assert positions[:carried] == list(range(last - carried + 1, last + 1))
        counts.append(carried)
        last = positions[-1]
    return counts


ALPHABET = string.ascii_lowercase + "áéíóúãõç"


def random_document(rng: random.Random, *, max_word: int, distinct: bool) -> str:
    """Paragraphs of sentences with irregular whitespace; words at most `max_word` chars."""
    paragraphs = []
    counter = 0
    for _ in range(rng.randint(1, 6)):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = []
            for _ in range(rng.randint(1, 25)):
                suffix = str(counter) if distinct else ""
                counter += 1
                length = rng.randint(1, max(1, max_word - len(suffix) - 1))
                words.append("".join(rng.choices(ALPHABET, k=length)) + suffix)
            end = rng.choice([".", "?", "!", ";", ":", ""])
            sentences.append(" ".join(words) + end)
        joiners = [" ", "  ", "\n", " \t "]
        paragraph = sentences[0]
        for sentence in sentences[1:]:
            paragraph += rng.choice(joiners) + sentence
        paragraphs.append(paragraph)
    separators = ["\n\n", "\n \n", "\n\n\n", "\r\n\r\n"]
    text = paragraphs[0]
    for paragraph in paragraphs[1:]:
        text += rng.choice(separators) + paragraph
    return text


SEEDS = range(300)

# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("seed", SEEDS)
def test_random_documents_are_chunked_within_size_covering_every_word_in_order(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(16, 400)
    overlap = rng.randint(0, size - 1)
    text = random_document(rng, max_word=min(size, 16), distinct=False)

    chunks = chunk_text(text, size=size, overlap=overlap)

    assert chunks
    assert all(0 < len(c) <= size for c in chunks), [len(c) for c in chunks]
    assert_covers_in_order(text, chunks, overlap)


@pytest.mark.parametrize("seed", SEEDS)
def test_overlap_repeats_only_whole_words_from_the_previous_chunk_end(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(24, 400)
    overlap = rng.randint(0, size - 1)
    text = random_document(rng, max_word=min(size, 16), distinct=True)
    words = words_of(text)

    chunks = chunk_text(text, size=size, overlap=overlap)

    assert all(len(c) <= size for c in chunks)
    for (previous, chunk), carried in zip(
        itertools.pairwise(chunks), carried_counts(chunks, words), strict=True
    ):
        head = words_of(chunk)[:carried]
        assert head == (words_of(previous)[-carried:] if carried else [])
        assert len(" ".join(head)) <= overlap
        assert carried < len(words_of(chunk)), "a chunk must add something new"


@pytest.mark.parametrize("seed", range(100))
def test_without_overlap_chunks_partition_the_words(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(16, 300)
    text = random_document(rng, max_word=min(size, 16), distinct=False)

    chunks = chunk_text(text, size=size, overlap=0)

    assert [w for c in chunks for w in words_of(c)] == words_of(text)


@pytest.mark.parametrize("seed", range(100))
def test_long_words_are_hard_split_without_losing_characters(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(4, 40)
    text = random_document(rng, max_word=size * 4, distinct=False)

    chunks = chunk_text(text, size=size, overlap=0)

    assert all(0 < len(c) <= size for c in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())


@pytest.mark.parametrize("seed", range(100))
def test_long_words_with_overlap_still_fit_the_size(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(4, 60)
    overlap = rng.randint(0, size - 1)
    text = random_document(rng, max_word=size * 3, distinct=False)

    chunks = chunk_text(text, size=size, overlap=overlap)

    assert all(0 < len(c) <= size for c in chunks)
    input_words = set(words_of(text))
    for chunk in chunks:
        for token in words_of(chunk):
            assert any(token in word for word in input_words), token


# --------------------------------------------------------------------------- fixed cases


@pytest.mark.parametrize("text", ["", " ", "\n", "\n\n\t  \n", "\r\n\r\n"])
def test_empty_or_whitespace_text_has_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


def test_short_text_is_one_chunk_with_whitespace_normalized() -> None:
    assert chunk_text("Olá,\n   tudo   bem?\t Sim.") == ["Olá, tudo bem? Sim."]


@pytest.mark.parametrize(
    ("size", "overlap"),
    [(0, 0), (-1, 0), (-800, 120), (10, -1), (10, 10), (10, 11), (800, 800), (1, 1)],
)
def test_invalid_size_or_overlap_raises_value_error(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("Algum texto.", size=size, overlap=overlap)


@pytest.mark.parametrize(
    ("size", "overlap", "expected"),
    [
        (1, 0, list("abcdefghi")),
        (10, 0, ["abc def", "ghi"]),
        (10, 5, ["abc def", "def ghi"]),
        (10, 9, ["abc def", "ghi"]),  # the carried "abc def" would not fit beside "ghi"
        (11, 10, ["abc def ghi"]),
        (800, 799, ["abc def ghi"]),
    ],
)
def test_boundary_size_and_overlap_values_are_accepted(
    size: int, overlap: int, expected: list[str]
) -> None:
    assert chunk_text("abc def ghi", size=size, overlap=overlap) == expected


def test_word_longer_than_size_is_hard_split_into_size_pieces() -> None:
    assert chunk_text("a" * 25, size=10, overlap=0) == ["a" * 10, "a" * 10, "a" * 5]


def test_word_exactly_size_long_is_kept_whole() -> None:
    assert chunk_text("b" * 10, size=10, overlap=3) == ["b" * 10]


def test_hard_split_word_between_normal_words_keeps_every_character_in_order() -> None:
    url = "https://loja.example.com/rastreio?pedido=4411&token=abcdef0123456789"
    text = f"Acompanhe seu pedido em {url} a qualquer momento."

    chunks = chunk_text(text, size=20, overlap=0)

    assert all(len(c) <= 20 for c in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
    assert any(c.startswith("https://loja.example") for c in chunks)


def test_fitting_paragraphs_are_never_split_even_when_words_would_fill_the_chunk() -> None:
    paragraphs = [
        " ".join(f"{name}{i:02d}" for i in range(50)) for name in ("alfa", "beta", "gama")
    ]  # 349 characters each
    text = "\n\n".join(paragraphs)

    chunks = chunk_text(text, size=500, overlap=0)

    assert chunks == paragraphs


def test_small_paragraphs_are_packed_together_up_to_size() -> None:
    paragraphs = ["Primeiro parágrafo curto.", "Segundo parágrafo curto.", "Terceiro."]

    chunks = chunk_text("\n\n".join(paragraphs), size=800, overlap=120)

    assert len(chunks) == 1
    assert [normalized(p) for p in chunks[0].split("\n")] == paragraphs


@pytest.mark.parametrize("separator", ["\n\n", "\n \n", "\n\t\n", "\r\n\r\n", "\n\n\n\n"])
def test_blank_lines_of_any_shape_separate_paragraphs(separator: str) -> None:
    first = " ".join(f"um{i}" for i in range(40))
    second = " ".join(f"dois{i}" for i in range(40))

    chunks = chunk_text(first + separator + second, size=len(second) + 10, overlap=0)

    assert chunks == [first, second]


def test_overlong_paragraph_is_split_at_sentence_ends() -> None:
    sentences = [
        "A troca pode ser pedida em até sete dias corridos após o recebimento do produto.",
        "O produto deve estar sem uso, com etiqueta e na embalagem original.",
        "Peças em promoção também podem ser trocadas, mas não devolvidas.",
        "O frete da primeira troca é por nossa conta em todo o Brasil.",
        "Depois da primeira troca, o frete é pago pelo cliente.",
    ]
    text = " ".join(sentences)

    chunks = chunk_text(text, size=150, overlap=0)

    assert len(chunks) > 1
    for sentence in sentences:
        assert any(sentence in normalized(c) for c in chunks), sentence


def test_overlap_carries_the_end_of_the_previous_chunk() -> None:
    paragraphs = [
        " ".join(f"{name}{i:02d}" for i in range(50)) for name in ("alfa", "beta", "gama")
    ]

    chunks = chunk_text("\n\n".join(paragraphs), size=500, overlap=40)

    assert len(chunks) == 3
    for (previous, chunk), paragraph in zip(
        itertools.pairwise(chunks), paragraphs[1:], strict=True
    ):
        assert chunk.endswith(paragraph)
        carried = chunk[: -len(paragraph)].strip()
        assert carried, "expected words carried over"
        assert 0 < len(carried) <= 40
        assert previous.endswith(carried)
        assert previous[-len(carried) - 1] in " \n", "carried text must start at a word"


def test_overlap_that_would_not_fit_with_the_next_piece_is_dropped() -> None:
    first = " ".join(f"a{i:02d}" for i in range(20))  # 79 characters
    second = " ".join(f"b{i:02d}" for i in range(24))  # 95 characters

    chunks = chunk_text(f"{first}\n\n{second}", size=100, overlap=30)

    assert chunks == [first, second]


# --------------------------------------------------------------------------- realistic FAQ

FAQ = """\
Perguntas frequentes — Loja Centro

Qual é o horário de funcionamento?
A Loja Centro abre de segunda a sexta, das 9h às 19h, e aos sábados das 9h às 14h. Não abrimos aos \
domingos nem em feriados nacionais. Na véspera de Natal e de Ano-Novo fechamos às 13h.

Onde fica a loja?
Estamos na Rua XV de Novembro, 1234, Centro, Curitiba (PR), em frente à Praça Tiradentes. Há \
estacionamento conveniado no Edifício Central, com uma hora grátis para compras acima de R$ 150.

Quais são as formas de pagamento?
Aceitamos Pix, cartões de crédito e débito (Visa, Mastercard, Elo e American Express) e boleto \
bancário. No cartão de crédito parcelamos em até 10 vezes sem juros para compras acima de R$ 300. \
O boleto vence em três dias úteis e o pedido só é separado depois da compensação.

Qual é a política de trocas e devoluções?
Você pode pedir a troca em até 30 dias corridos após o recebimento, e a devolução (direito de \
arrependimento) em até 7 dias corridos, conforme o Código de Defesa do Consumidor. O produto deve \
estar sem sinais de uso, com etiquetas e na embalagem original. Peças em promoção podem ser \
trocadas, mas não devolvidas. Para começar, envie o número do pedido e fotos do produto pelo \
WhatsApp. A primeira troca tem frete grátis para todo o Brasil; a partir da segunda, o frete é \
pago pelo cliente. O estorno no cartão aparece em até duas faturas; no Pix, devolvemos em até 5 \
dias úteis na mesma chave usada na compra. Produtos de higiene pessoal, como fones de ouvido \
intra-auriculares, só são trocados com o lacre intacto. Se o produto chegou com defeito, a troca \
ou o reembolso integral vale por 90 dias, e nós buscamos o item no seu endereço sem custo. Trocas \
na loja física são feitas no balcão de atendimento, com o cupom fiscal ou o número do pedido.

Quanto tempo demora a entrega?
Para Curitiba e região metropolitana, entregamos em até 2 dias úteis. Para as demais capitais do \
Sul e do Sudeste, de 3 a 5 dias úteis; para o restante do país, de 5 a 10 dias úteis. O prazo \
começa a contar após a confirmação do pagamento. O código de rastreio é enviado por e-mail e \
por WhatsApp assim que o pedido é despachado.

O frete é grátis?
Sim, para compras acima de R$ 299 enviadas para o Sul e o Sudeste. Para as outras regiões, o \
frete grátis vale a partir de R$ 399. Abaixo desses valores, o frete é calculado no carrinho pelo \
CEP.

Vocês emitem nota fiscal?
Sim. A nota fiscal eletrônica é enviada para o e-mail cadastrado no momento do despacho. Para \
nota com CNPJ, informe os dados da empresa antes de finalizar o pagamento, pois não é possível \
alterar a nota depois de emitida.

Como falo com um atendente?
Escreva "atendente" aqui no WhatsApp em horário comercial e uma pessoa da nossa equipe continua \
a conversa. Fora do horário, deixe sua mensagem que respondemos no próximo dia útil.
"""

FAQ_PARAGRAPHS = [normalized(p) for p in re.split(r"\n\s*\n", FAQ) if p.strip()]


def test_faq_is_chunked_at_800_with_120_overlap_within_size_and_in_order() -> None:
    chunks = chunk_text(FAQ, size=800, overlap=120)

    assert len(chunks) >= 3
    assert all(len(c) <= 800 for c in chunks)
    assert_covers_in_order(FAQ, chunks, 120)


def test_faq_defaults_are_800_and_120() -> None:
    assert chunk_text(FAQ) == chunk_text(FAQ, size=800, overlap=120)


def test_faq_paragraphs_that_fit_are_found_whole_in_one_chunk() -> None:
    chunks = [normalized(c) for c in chunk_text(FAQ, size=800, overlap=120)]

    fitting = [p for p in FAQ_PARAGRAPHS if len(p) <= 800]
    assert len(fitting) == len(FAQ_PARAGRAPHS) - 1  # the return policy is longer than a chunk
    for paragraph in fitting:
        assert any(paragraph in c for c in chunks), paragraph


def test_faq_long_paragraph_is_split_between_whole_sentences() -> None:
    chunks = [normalized(c) for c in chunk_text(FAQ, size=800, overlap=120)]
    [long_paragraph] = [p for p in FAQ_PARAGRAPHS if len(p) > 800]

    sentences = re.split(r"(?<=[.!?;:])\s+", long_paragraph)
    assert len(sentences) > 3
    for sentence in sentences:
        assert any(sentence in c for c in chunks), sentence


def test_faq_chunks_repeat_some_words_of_their_predecessor() -> None:
    chunks = chunk_text(FAQ, size=800, overlap=120)

    repeated = sum(len(words_of(c)) for c in chunks) - len(words_of(FAQ))
    assert repeated > 0
    starts_with_overlap = [
        any(
            words_of(chunk)[:k] == words_of(previous)[-k:]
            and len(" ".join(words_of(chunk)[:k])) <= 120
            for k in range(1, len(words_of(chunk)))
        )
        for previous, chunk in itertools.pairwise(chunks)
    ]
    assert any(starts_with_overlap)


# --------------------------------------------------------------------------- by section

from engine.core.chunking import chunk_document, split_sections  # noqa: E402

MENU = """# Cardápio

Massas frescas todos os dias.

## Pizzas

| Sabor | Broto | Grande |
|---|---|---|
| Calabresa | R$ 40,00 | R$ 64,00 |

Meio a meio: cobramos o sabor mais caro.

## Bebidas

Refrigerante 2 litros: R$ 16,00.

### Vinhos

Taça de vinho da casa: R$ 22,00.
"""


def test_sections_carry_their_parent_heading() -> None:
    titles = [s.title for s in split_sections(MENU)]
    assert titles == ["Cardápio", "Cardápio > Pizzas", "Cardápio > Bebidas", "Bebidas > Vinhos"]


def test_every_chunk_starts_with_its_section_title_and_never_spans_two_sections() -> None:
    chunks = chunk_document(MENU, size=800, overlap=120)

    assert [c.section for c in chunks] == [s.title for s in split_sections(MENU)]
    for chunk in chunks:
        assert chunk.text.startswith(chunk.section + "\n")
    assert "| Calabresa | R$ 40,00 | R$ 64,00 |" in chunks[1].text  # table rows stay rows
    assert "Refrigerante" not in chunks[1].text


@pytest.mark.parametrize("size", [200, 400, 800])
def test_a_long_section_is_cut_at_paragraphs_within_the_size(size: int) -> None:
    body = "\n\n".join(f"Parágrafo {i}: " + "palavra " * 30 for i in range(12))
    chunks = chunk_document(f"## Regras da casa\n\n{body}", size=size, overlap=40)

    assert len(chunks) > 1
    assert all(len(c.text) <= size for c in chunks)
    assert all(c.text.startswith("Regras da casa\n") for c in chunks)
    for i in range(12):  # every paragraph is in some chunk
        assert any(f"Parágrafo {i}:" in c.text for c in chunks)


def test_every_answer_of_the_evaluation_set_lies_whole_in_one_chunk() -> None:
    from bench.retrieval_dataset import contains_answer, load_retrieval_dataset

    dataset = load_retrieval_dataset()
    for size in (400, 800):
        for business in dataset.businesses:
            chunks = [
                c for d in business.documents for c in chunk_document(d.text, size=size, overlap=60)
            ]
            for question in business.questions:
                assert any(contains_answer(c.text, question.expected.answer) for c in chunks), (
                    size,
                    question.q,
                )


def test_text_before_any_heading_has_no_title() -> None:
    [chunk] = chunk_document("Só um parágrafo, sem título.")
    assert chunk == Chunk("", "Só um parágrafo, sem título.")


from engine.core.chunking import Chunk  # noqa: E402
