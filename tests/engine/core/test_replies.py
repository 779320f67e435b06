"""Reply delivery (engine/replies.py): messages per reply, typing delays, send timeouts.

Property checks run over seeded pseudo-random replies (stdlib `random`; hypothesis is not a
dependency), so every run sees the same inputs and a failure names its seed.
"""

from __future__ import annotations

import random

import pytest

from engine.core.replies import send_timeout_s, split_reply, typing_delay_ms

# --------------------------------------------------------------------------- split_reply

SPLIT_CASES = [
    pytest.param("", {}, [], id="empty"),
    pytest.param("  \n\n \t\n ", {}, [], id="whitespace-only"),
    pytest.param("Olá!", {}, ["Olá!"], id="one-paragraph"),
    pytest.param("  Olá!  \n", {}, ["Olá!"], id="stripped"),
    pytest.param(
        "Olá!\n\nComo posso ajudar?", {}, ["Olá!", "Como posso ajudar?"], id="two-paragraphs"
    ),
    pytest.param("a\n\n\n\nb", {}, ["a", "b"], id="several-blank-lines"),
    pytest.param("a\n  \n\t\nb", {}, ["a", "b"], id="whitespace-only-lines"),
    pytest.param("a\r\n\r\nb\r\nc", {}, ["a", "b\nc"], id="windows-line-breaks"),
    pytest.param("\n\na\n\n\n", {}, ["a"], id="leading-and-trailing-blank-lines"),
    pytest.param("linha 1\nlinha 2", {}, ["linha 1\nlinha 2"], id="single-newline-kept"),
    pytest.param(
        "Formas de pagamento:\n- Pix\n- Cartão\n- Boleto\n\nQual prefere?",
        {},
        ["Formas de pagamento:\n- Pix\n- Cartão\n- Boleto", "Qual prefere?"],
        id="markdown-list-stays-with-its-heading",
    ),
    pytest.param(
        "1. Entre no app\n2. Toque em *Pedidos*\n3. Escolha o pedido",
        {},
        ["1. Entre no app\n2. Toque em *Pedidos*\n3. Escolha o pedido"],
        id="numbered-list-kept",
    ),
    pytest.param(
        "p1\n\np2\n\np3\n\np4\n\np5",
        {"max_parts": 3},
        ["p1", "p2", "p3\n\np4\n\np5"],
        id="tail-merged-into-last-part",
    ),
    pytest.param("p1\n\np2\n\np3", {"max_parts": 3}, ["p1", "p2", "p3"], id="exactly-max-parts"),
    pytest.param("p1\n\n\n\np2", {"max_parts": 1}, ["p1\n\np2"], id="one-part-only"),
    pytest.param(
        "um dois três quatro", {"max_part_chars": 9}, ["um dois", "três", "quatro"], id="at-spaces"
    ),
    pytest.param(
        "Oi. Tudo bem com você",
        {"max_part_chars": 15},
        ["Oi. Tudo bem", "com você"],
        id="early-sentence-end-too-short-to-cut-at",
    ),
    pytest.param(
        "Primeira frase. Segunda parte longa",
        {"max_part_chars": 25},
        ["Primeira frase.", "Segunda parte longa"],
        id="at-sentence-end",
    ),
    pytest.param(
        "Pronto! Seu pedido",
        {"max_part_chars": 14},
        ["Pronto!", "Seu pedido"],
        id="at-exclamation-mark",
    ),
    pytest.param(
        'Ele disse "sim." e depois',
        {"max_part_chars": 20},
        ['Ele disse "sim."', "e depois"],
        id="sentence-end-inside-quotes",
    ),
    pytest.param(
        "Itens:\n- arroz. feijão\n- macarrão",
        {"max_part_chars": 25},
        ["Itens:\n- arroz. feijão", "- macarrão"],
        id="line-break-preferred-over-sentence-end",
    ),
    pytest.param(
        "x" * 25, {"max_part_chars": 10}, ["x" * 10, "x" * 10, "x" * 5], id="over-long-word"
    ),
    pytest.param(
        "veja https://example.com/" + "a" * 20 + " ok",
        {"max_part_chars": 15},
        ["veja", "https://example", ".com/aaaaaaaaaa", "aaaaaaaaaa ok"],
        id="long-url-cut-only-when-alone",
    ),
    pytest.param(
        "aaaa bbbb cccc dddd eeee",
        {"max_part_chars": 9, "max_parts": 2},
        ["aaaa bbbb", "cccc dddd eeee"],
        id="merged-tail-keeps-the-space",
    ),
    pytest.param(
        "x" * 25,
        {"max_part_chars": 10, "max_parts": 2},
        ["x" * 10, "x" * 15],
        id="merged-tail-rejoins-a-cut-word",
    ),
    pytest.param("abc", {"max_part_chars": 3}, ["abc"], id="exactly-max-part-chars"),
]


@pytest.mark.parametrize(("text", "options", "expected"), SPLIT_CASES)
def test_split_reply_sends_one_message_per_paragraph_within_the_limits(
    text: str, options: dict[str, int], expected: list[str]
) -> None:
    assert split_reply(text, **options) == expected


def test_a_realistic_reply_becomes_its_paragraphs() -> None:
    reply = (
        "Olá, Maria! 😊\n\n"
        "Seu pedido #1234 saiu para entrega hoje de manhã.\n\n"
        "Você pode acompanhar assim:\n"
        "1. Abra o link de rastreio\n"
        "2. Digite o código *BR123*\n\n"
        "Posso ajudar em mais alguma coisa?"
    )

    assert split_reply(reply) == [
        "Olá, Maria! 😊",
        "Seu pedido #1234 saiu para entrega hoje de manhã.",
        "Você pode acompanhar assim:\n1. Abra o link de rastreio\n2. Digite o código *BR123*",
        "Posso ajudar em mais alguma coisa?",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_parts": 0}, "max_parts must be >= 1", id="no-parts"),
        pytest.param({"max_part_chars": 0}, "max_part_chars must be >= 1", id="no-chars"),
        pytest.param({"max_part_chars": -5}, "max_part_chars must be >= 1", id="negative"),
    ],
)
def test_split_reply_refuses_impossible_limits(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_reply("Olá", **options)


WORDS = [
    "Olá",
    "pedido",
    "entrega",
    "R$",
    "49,90",
    "amanhã",
    "Pix",
    "*grátis*",
    "você",
    "😊",
    "a",
    "https://loja.example.com/rastreio/ABCDEF123456",
    "ok.",
    "sim!",
    "não?",
    '"certo."',
    "(sim.)",
]
SEPARATORS = [" "] * 12 + ["\n", "\n- ", "\n\n", "\n \n\t\n", "  ", "\r\n", "\n\n\n"]


def random_reply(rng: random.Random) -> str:
    """Words joined by spaces, line breaks, list items and blank lines; sometimes a huge word."""
    words = []
    for _ in range(rng.randrange(0, 120)):
        if rng.random() < 0.03:
            words.append("z" * rng.randrange(20, 300))
        else:
            words.append(rng.choice(WORDS))
    text = "".join(word + rng.choice(SEPARATORS) for word in words)
    return rng.choice(["", " ", "\n\n"]) + text


def expected_tokens(text: str, limit: int) -> list[str]:
    """The text's words; a word longer than `limit` in `limit`-sized pieces from its start."""
    tokens: list[str] = []
    for word in text.split():
        tokens.extend(word[i : i + limit] for i in range(0, len(word), limit))
    return tokens


@pytest.mark.parametrize("seed", range(300))
def test_split_reply_keeps_every_word_in_order_within_the_limits(seed: int) -> None:
    rng = random.Random(seed)
    text = random_reply(rng)
    max_parts = rng.randrange(1, 9)
    max_part_chars = rng.choice([1, 5, 12, 40, 100, 1500])

    parts = split_reply(text, max_parts=max_parts, max_part_chars=max_part_chars)

    assert "".join("".join(parts).split()) == "".join(text.split())  # nothing lost, in order
    assert (parts == []) is (text.strip() == "")
    assert len(parts) <= max_parts
    assert all(part and part == part.strip() for part in parts)
    assert all(len(part) <= max_part_chars for part in parts[:-1])
    if len(parts) < max_parts:  # nothing was merged into the last part
        assert all(len(part) <= max_part_chars for part in parts)


@pytest.mark.parametrize("seed", range(300))
def test_split_reply_cuts_inside_a_word_only_when_it_is_longer_than_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    text = random_reply(rng)
    max_part_chars = rng.choice([5, 12, 40, 100])

    parts = split_reply(text, max_parts=10_000, max_part_chars=max_part_chars)

    assert [token for part in parts for token in part.split()] == expected_tokens(
        text, max_part_chars
    )
    assert all(len(part) <= max_part_chars for part in parts)


@pytest.mark.parametrize("seed", range(50))
def test_text_without_blank_lines_that_fits_is_one_message(seed: int) -> None:
    rng = random.Random(seed)
    text = "\n".join(" ".join(rng.choices(WORDS, k=rng.randrange(1, 8))) for _ in range(5))

    assert split_reply(text, max_part_chars=len(text)) == [text]


# --------------------------------------------------------------------------- typing_delay_ms

TYPING_CASES = [
    # part, ms_per_char, min_ms, max_ms, expected
    pytest.param("", 50, 1000, 20000, 1000, id="empty-part-gets-the-minimum"),
    pytest.param("a" * 10, 50, 1000, 20000, 1000, id="short-part-raised-to-minimum"),
    pytest.param("a" * 30, 50, 1000, 20000, 1500, id="proportional"),
    pytest.param("a" * 400, 50, 1000, 20000, 20000, id="exactly-the-maximum"),
    pytest.param("a" * 5000, 50, 1000, 20000, 20000, id="long-part-capped"),
    pytest.param("a" * 30, 0, 1000, 20000, 0, id="zero-per-char-turns-typing-off"),
    pytest.param("ab", 10, 0, 100, 20, id="no-minimum"),
    pytest.param("a" * 30, 50, 3000, 3000, 3000, id="min-equals-max"),
    pytest.param("😊 ok", 100, 0, 20000, 400, id="counts-characters-not-bytes"),
]


@pytest.mark.parametrize(("part", "per_char", "min_ms", "max_ms", "expected"), TYPING_CASES)
def test_typing_delay_is_length_times_ms_per_char_clamped(
    part: str, per_char: int, min_ms: int, max_ms: int, expected: int
) -> None:
    assert typing_delay_ms(part, ms_per_char=per_char, min_ms=min_ms, max_ms=max_ms) == expected


@pytest.mark.parametrize(
    ("per_char", "min_ms", "max_ms", "message"),
    [
        pytest.param(-1, 1000, 20000, "must be >= 0", id="negative-per-char"),
        pytest.param(50, -1, 20000, "must be >= 0", id="negative-minimum"),
        pytest.param(50, 0, -1, "must be >= 0", id="negative-maximum"),
        pytest.param(50, 20000, 1000, "min_ms must be <= max_ms", id="minimum-above-maximum"),
        pytest.param(0, 20000, 1000, "min_ms must be <= max_ms", id="checked-even-when-off"),
    ],
)
def test_typing_delay_refuses_invalid_settings(
    per_char: int, min_ms: int, max_ms: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        typing_delay_ms("Olá", ms_per_char=per_char, min_ms=min_ms, max_ms=max_ms)


@pytest.mark.parametrize("seed", range(50))
def test_typing_delay_stays_in_bounds_and_grows_with_length(seed: int) -> None:
    rng = random.Random(seed)
    per_char = rng.randrange(1, 200)
    min_ms = rng.randrange(0, 5000)
    max_ms = min_ms + rng.randrange(0, 30000)
    lengths = sorted(rng.randrange(0, 2000) for _ in range(20))

    delays = [
        typing_delay_ms("x" * n, ms_per_char=per_char, min_ms=min_ms, max_ms=max_ms)
        for n in lengths
    ]

    assert all(min_ms <= delay <= max_ms for delay in delays)
    assert delays == sorted(delays)


# --------------------------------------------------------------------------- send_timeout_s

TIMEOUT_CASES = [
    pytest.param(0, 15.0, 15.0, id="no-delay-is-the-base-timeout"),
    pytest.param(20000, 15.0, 35.0, id="longest-default-typing-delay"),
    pytest.param(1500, 2.5, 4.0, id="fractional"),
    pytest.param(1, 0.001, 0.002, id="tiny"),
]


@pytest.mark.parametrize(("delay_ms", "base_s", "expected"), TIMEOUT_CASES)
def test_send_timeout_adds_the_delay_evolution_waits_to_the_base_timeout(
    delay_ms: int, base_s: float, expected: float
) -> None:
    assert send_timeout_s(delay_ms, base_timeout_s=base_s) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(50))
def test_send_timeout_always_outlasts_the_delay(seed: int) -> None:
    rng = random.Random(seed)
    delay_ms = rng.randrange(0, 120_000)
    base_s = rng.uniform(0.001, 60)

    assert send_timeout_s(delay_ms, base_timeout_s=base_s) > delay_ms / 1000


@pytest.mark.parametrize(
    ("delay_ms", "base_s", "message"),
    [
        pytest.param(-1, 15.0, "delay_ms must be >= 0", id="negative-delay"),
        pytest.param(1000, 0.0, "base_timeout_s must be > 0", id="zero-base"),
        pytest.param(1000, -5.0, "base_timeout_s must be > 0", id="negative-base"),
    ],
)
def test_send_timeout_refuses_invalid_arguments(delay_ms: int, base_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        send_timeout_s(delay_ms, base_timeout_s=base_s)
