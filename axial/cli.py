"""`axial <verb>`: one subcommand per public function, same names as the Python API.

Each capability module owns its commands in `<module>/cli.py` with a `register(app)` function, so the CLI
stays a thin layer over the Python API and this file stays short.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from axial.errors import AxialError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multi-objective alignment along helpful / harmless / honest axes.")
console = Console(stderr=True)

# Modules that add commands. A module listed here must exist; the list grows with each capability.
COMMAND_MODULES = [
    "axial.chat",
    "axial.data.cli",
    "axial.demo",
    "axial.evaluate.cli",
    "axial.experts.cli",
    "axial.export",
    "axial.mocae.cli",
    "axial.mora.cli",
    "axial.mixture.cli",
    "axial.preference.cli",
    "axial.rewards.cli",
    "axial.serve.cli",
]


_registered = False


def _register_all() -> None:
    global _registered
    if not _registered:
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(app)
        _registered = True


def main(argv: list[str] | None = None) -> None:
    _register_all()
    try:
        app(args=argv, standalone_mode=False)
    except AxialError as e:
        console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as e:  # click usage errors carry their own exit code
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
