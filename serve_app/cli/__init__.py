"""`conversa`: run the engine, migrate, and manage clientes through the operator API.

    conversa run                          # everything on one machine (embedded defaults)
    conversa cliente create --nome "Loja" # then: apikey create, billing checkout,
                                          # instance connect, docs upload, conversations …

Each module below adds its commands to the one Typer app (`serve_app.cli.app`); a new command
goes into its own module, imported here.
"""

from __future__ import annotations

from serve_app.cli import admin, deliveries, engine, ops, privacy, tenancy  # noqa: F401  (each registers its commands)
from serve_app.cli.app import app, main

__all__ = ["app", "main"]
