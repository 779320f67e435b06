"""The `conversa` command: one Typer app, its global options, and `main` (errors as one line).

A module adds its commands with `@app.command()` (or to one of the groups below) and is imported
by `serve_app/cli/__init__.py`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from serve_app.cli.api import DEFAULT_URL, Target
from serve_app.cli.output import CliError, err, print_error

app = typer.Typer(
    name="conversa",
    help="Run Conversa, and manage clientes through its operator API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # `main` prints errors as one line
    context_settings={"help_option_names": ["-h", "--help"]},
)
cliente_app = typer.Typer(help="Create or change a cliente.", no_args_is_help=True)
instance_app = typer.Typer(
    help="Connect (provision) or register a WhatsApp (Evolution) instance.", no_args_is_help=True
)
docs_app = typer.Typer(help="Upload or delete knowledge documents.", no_args_is_help=True)
knowledge_app = typer.Typer(
    help="A cliente's knowledge: its size, or delete it all.", no_args_is_help=True
)
app.add_typer(cliente_app, name="cliente")
app.add_typer(instance_app, name="instance")
app.add_typer(docs_app, name="docs")
app.add_typer(knowledge_app, name="knowledge")
apikey_app = typer.Typer(help="A cliente's tenant API keys (/v1).", no_args_is_help=True)
billing_app = typer.Typer(help="A cliente's Stripe subscription.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
app.add_typer(billing_app, name="billing")


class _State:
    debug = False


STATE = _State()


@app.callback()
def _global_options(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="CONVERSA_URL", help="Conversa's base URL.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(help="Operator token (default: ADMIN_TOKEN from the environment or .env)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    ctx.obj = Target(url=url, token=token)
    STATE.debug = debug


def target(ctx: typer.Context) -> Target:
    """The global --url / --token, for a command that calls the operator API."""
    found = ctx.find_object(Target)
    return found if found is not None else Target()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status. Errors are one line on stderr, never a traceback
    (unless --debug)."""
    try:
        result = app(args=argv, prog_name="conversa", standalone_mode=False)
    except CliError as e:
        print_error(str(e))
        return 1
    except typer.Abort:
        err.print("aborted")
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.TyperException as e:  # usage errors: one line, and the usage to correct it
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            print_error(e.format_message())
        return e.exit_code
    except Exception as e:
        if STATE.debug:
            raise
        print_error(f"{type(e).__name__}: {e} (run again with --debug for the traceback)")
        return 1
    return result if isinstance(result, int) else 0
