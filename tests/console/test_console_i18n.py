"""Every word a page shows is in the catalogue, in both languages: the keys the templates name
literally and the ones they build from states, authors, days and settings fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import serve_app.console as console
from engine.core.business_hours import DAYS
from engine.core.console import ChatState
from engine.core.statuses import Author
from serve_app.console.i18n import LANGS, MESSAGES, pick_lang, translate
from serve_app.console.pages import dashboard, settings

TEMPLATES = Path(console.__file__).parent / "templates"
LITERAL = re.compile(r"""\bt\(\s*["']([a-z_.]+)["']\s*\)""")


def _used_keys() -> set[str]:
    keys = {k for f in TEMPLATES.glob("*.html") for k in LITERAL.findall(f.read_text())}
    keys |= {f"state.{s.value}" for s in ChatState}
    keys |= {f"author.{a.value}" for a in Author}
    keys |= {f"day.{d}" for d in DAYS}
    keys |= {f"settings.{name}" for name in (*settings.TEXTS, *settings.NUMBERS)}
    keys |= {f"nav.{page}" for page in ("dashboard", "whatsapp", "knowledge")}
    keys |= {f"nav.{page}" for page in ("conversations", "settings")}
    keys |= {key for key, _ in dashboard.SERIES}
    keys |= set(settings.ERROR_KEYS.values())
    return keys


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_a_page_uses_is_translated(lang: str) -> None:
    used = _used_keys()
    assert len(used) > 50
    missing = sorted(k for k in used if k not in MESSAGES[lang] and k != "app.title")
    assert missing == []


def test_the_language_is_picked_from_what_was_asked_else_portuguese() -> None:
    assert pick_lang(None) == "pt-BR"
    assert pick_lang("en") == "en" and pick_lang("EN") == "en"
    assert pick_lang("pt-br") == "pt-BR"
    assert pick_lang("fr") == "pt-BR"
    assert translate("en", "nav.conversations") == "Conversations"
    assert translate("en", "app.title") == "Conversa"  # not in English: the Portuguese word
    assert translate("pt-BR", "no.such.key") == "no.such.key"
