"""The console works from an installed wheel and fetches nothing at run time: every template and
static file is package data, and no page loads a script, style or image from another host."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import serve_app.console as console

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(console.__file__).parent


def test_every_template_and_static_file_ships_in_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["serve_app.console"]
    files = [
        p.relative_to(PACKAGE).as_posix()
        for folder in ("templates", "static")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file()
    ]
    assert any(f.endswith(".html") for f in files) and "static/htmx.min.js" in files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == []


def test_htmx_is_vendored_with_its_licence_and_nothing_is_fetched_from_elsewhere() -> None:
    htmx = (PACKAGE / "static" / "htmx.min.js").read_text()
    assert 'version:"2.0.11"' in htmx.replace(" ", "")
    assert "Zero-Clause BSD" in (PACKAGE / "static" / "htmx.LICENSE").read_text()
    external = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")
    for template in (PACKAGE / "templates").glob("*.html"):
        assert not external.search(template.read_text()), template.name
