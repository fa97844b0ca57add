"""`axial <verb>`: one subcommand per public function, same names as the Python API.

Each capability module owns its commands in `<module>/cli.py` with a `register(app)` function, so the CLI
stays a thin layer over the Python API and this file stays short.
"""

from __future__ import annotations

import importlib
import sys

import click
import typer
from rich.console import Console

from axial.errors import AxialError

# Where typer's usage errors live depends on its version: typer >= 0.28 has typer.exceptions; 0.27 (pyproject's
# floor) bundles click as typer._click and raises that copy's ClickException.
try:
    from typer.exceptions import TyperException
except ImportError:
    from typer._click.exceptions import ClickException as TyperException

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multi-objective alignment along helpful / harmless / honest axes.")
console = Console(stderr=True)

# Modules that add commands. A module listed here must exist; the list grows with each capability.
COMMAND_MODULES = [
    "axial.chat",
    "axial.data.cli",
    "axial.demo",
    "axial.distributed",
    "axial.evaluate.cli",
    "axial.experts.cli",
    "axial.export",
    "axial.hoe.cli",
    "axial.lmeval.cli",
    "axial.mocae.cli",
    "axial.mora.cli",
    "axial.mixture.cli",
    "axial.preference.cli",
    "axial.rewards.cli",
    "axial.serve.cli",
    "axial.models",
]


_registered = False


@app.callback()
def _global_options(
    allow_base_mismatch: bool = typer.Option(
        False, "--allow-base-mismatch",
        help="apply adapters and routers to a base other than the one they record (warns instead of refusing)"),
):
    import os

    from axial.baseref import ALLOW_ENV

    if allow_base_mismatch:
        os.environ[ALLOW_ENV] = "1"


def _register_all() -> None:
    global _registered
    if not _registered:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(app)
        _registered = True


def main(argv: list[str] | None = None) -> None:
    _register_all()
    try:
        code = app(args=argv, prog_name="axial", standalone_mode=False)
    except AxialError as e:
        console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
        sys.exit(2)
    except _USAGE_ERRORS as e:
        _usage_error(e, argv if argv is not None else sys.argv[1:])
    except _ABORTS:
        sys.exit(130)
    # typer.Exit(code) is returned, not raised, when standalone_mode is off.
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


# typer >= 0.24 bundles its own copy of click: its usage errors derive from typer.exceptions.TyperException,
# not from the installed click's ClickException, so both are caught (the latter for plain click code).
_USAGE_ERRORS = (TyperException, click.ClickException)
_ABORTS = (typer.Abort, click.exceptions.Abort, KeyboardInterrupt)


def _usage_error(e: Exception, argv: list[str]) -> None:
    """One line naming the problem and where to read more, then click's exit code (2 for usage errors)."""
    code = getattr(e, "exit_code", 2)
    if type(e).__name__ == "NoArgsIsHelpError":  # `axial` or `axial data` alone: the help is the answer
        print(e.format_message(), file=sys.stderr)
        sys.exit(code)
    message = " ".join(e.format_message().split())
    print(f"error: {message} (see '{_command_path(e, argv)} --help')", file=sys.stderr)
    sys.exit(code)


def _command_path(e: Exception, argv: list[str]) -> str:
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        return ctx.command_path
    # Some errors (an option missing its value) carry no context: follow the subcommand names in argv.
    command, path = typer.main.get_command(app), ["axial"]
    for arg in argv:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command = sub
        path.append(arg)
    return " ".join(path)


if __name__ == "__main__":
    main()
