"""What the CLI prints: rich on a terminal (colours, tables, progress bars), plain when piped.

Rich decides colour from the stream itself (a terminal, `NO_COLOR`, `FORCE_COLOR`), so output
piped into a file or `jq` carries no escape codes.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """A message for the operator: what went wrong and what to do, printed as one line."""


def print_json(data: Any) -> None:
    """JSON for people on a terminal (highlighted), for programs when piped (plain)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out.is_terminal:
        out.print_json(text)
    else:
        out.file.write(text + "\n")


def print_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
