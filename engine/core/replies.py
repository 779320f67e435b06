"""How a generated reply reaches WhatsApp: in which messages, after how much "typing…".

Like Evolution's own bots (`splitMessages`, `timePerChar`), a reply is sent as one message per
paragraph, each preceded by a typing delay that grows with its length. Evolution waits that delay
inside the send request, so the request's timeout must outlast it.
"""

from __future__ import annotations

import re

_LINE_BREAKS = re.compile(r"\r\n?")
_BLANK_LINES = re.compile(r"\n\s*\n")  # one or more empty or whitespace-only lines
_WHITESPACE = re.compile(r"\s+")
# A sentence's last mark, then maybe closing quotes, brackets or markdown emphasis.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]*_~]{0,4}$")

_PARAGRAPH_SEPARATOR = "\n\n"


def split_reply(text: str, *, max_parts: int = 6, max_part_chars: int = 1500) -> list[str]:
    """The WhatsApp messages for `text`: its paragraphs, in order, none lost, none empty.

    Paragraphs are separated by blank lines; lines within one (a markdown list) stay together.
    A paragraph longer than `max_part_chars` is cut before the limit at a line break or sentence
    end in the second half of the window, else at the last space, and mid-word only when one
    word is longer than the limit. Beyond `max_parts`, the rest goes into the last part with its
    original separators, so `max_parts` wins: only that last part may exceed `max_part_chars`.
    """
    if max_parts < 1:
        raise ValueError("max_parts must be >= 1")
    if max_part_chars < 1:
        raise ValueError("max_part_chars must be >= 1")
    text = _LINE_BREAKS.sub("\n", text)
    pieces: list[tuple[str, str]] = []  # (separator before it in the text, piece)
    for paragraph in _BLANK_LINES.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        for number, (separator, piece) in enumerate(_cut(paragraph, max_part_chars)):
            pieces.append((_PARAGRAPH_SEPARATOR if number == 0 else separator, piece))
    if len(pieces) <= max_parts:
        return [piece for _, piece in pieces]
    head, tail = pieces[: max_parts - 1], pieces[max_parts - 1 :]
    last = tail[0][1] + "".join(separator + piece for separator, piece in tail[1:])
    return [piece for _, piece in head] + [last]


def typing_delay_ms(part: str, *, ms_per_char: int, min_ms: int, max_ms: int) -> int:
    """How long WhatsApp shows "typing…" before `part`: its length times `ms_per_char`, clamped.

    `ms_per_char` == 0 turns typing simulation off (0 ms, whatever `min_ms` says).
    """
    if ms_per_char < 0 or min_ms < 0 or max_ms < 0:
        raise ValueError("ms_per_char, min_ms and max_ms must be >= 0")
    if min_ms > max_ms:
        raise ValueError("min_ms must be <= max_ms")
    if ms_per_char == 0:
        return 0
    return min(max(len(part) * ms_per_char, min_ms), max_ms)


def send_timeout_s(delay_ms: int, *, base_timeout_s: float) -> float:
    """The HTTP timeout for a send Evolution delays by `delay_ms`: always longer than the delay."""
    if delay_ms < 0:
        raise ValueError("delay_ms must be >= 0")
    if base_timeout_s <= 0:
        raise ValueError("base_timeout_s must be > 0")
    return base_timeout_s + delay_ms / 1000


def _cut(paragraph: str, limit: int) -> list[tuple[str, str]]:
    """`paragraph` (stripped) in pieces of at most `limit` characters, each with the whitespace
    that separated it from the previous piece ("" after a cut inside a word)."""
    pieces: list[tuple[str, str]] = []
    separator, rest = "", paragraph
    while len(rest) > limit:
        end, resume = _cut_point(rest, limit)
        pieces.append((separator, rest[:end]))
        separator = "\n" if "\n" in rest[end:resume] else " " if resume > end else ""
        rest = rest[resume:]
    pieces.append((separator, rest))
    return pieces


def _cut_point(text: str, limit: int) -> tuple[int, int]:
    """Where the first piece of `text` ends and the next begins (the whitespace between them)."""
    newline = sentence = space = None
    for run in _WHITESPACE.finditer(text):
        if run.start() > limit:
            break
        if run.start() == 0:  # not after strip(); an empty piece would never end the loop
            continue
        space = run
        if run.start() < limit // 2:
            continue
        if "\n" in run.group():
            newline = run
        elif _SENTENCE_END.search(text[max(0, run.start() - 5) : run.start()]):
            sentence = run
    best = newline or sentence or space
    if best is None:  # one word longer than the limit
        return limit, limit
    return best.start(), best.end()
