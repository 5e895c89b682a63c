"""The command line: a thin door over the domains (no domain logic here).

Each domain's commands live in their own module here and are attached by `register(app)`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="medhub",
    help="medhub: ingest, de-identify, link, analyze, govern, schedule and serve medical data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

_COMMAND_MODULES = ("synth", "ingest", "privacy", "privacy_link", "linkage_unit", "views", "fleet", "demo")



@app.command()
def version() -> None:
    """Print medhub's version."""
    from medhub import __version__

    typer.echo(__version__)


for _name in _COMMAND_MODULES:
    importlib.import_module(f"medhub.cli.{_name}").register(app)


def main() -> None:
    app()
