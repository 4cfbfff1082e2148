"""The `cloche` command: one Typer app with a sub-app per area."""

from __future__ import annotations

from typing import Annotated

import typer

from cloche import __version__
from cloche.cli.audit_commands import audit_app
from cloche.cli.backup_commands import backup_app
from cloche.cli.environment_commands import register_environment_commands
from cloche.cli.host_commands import host_app
from cloche.cli.image_commands import image_app
from cloche.cli.network_commands import register_network_commands
from cloche.cli.serve_command import serve
from cloche.cli.snapshot_commands import register_snapshot_commands
from cloche.cli.token_commands import token_app
from cloche.cli.user_commands import user_app

app = typer.Typer(
    help="cloche: isolated, persistent Linux environments on one host.",
    no_args_is_help=True,
)
app.add_typer(host_app, name="host")
app.add_typer(image_app, name="image")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(backup_app, name="backup")
app.add_typer(token_app, name="token")
app.command("serve")(serve)
register_environment_commands(app)
register_snapshot_commands(app)
register_network_commands(app)


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print cloche's version."
        ),
    ] = False,
) -> None:
    """cloche: isolated, persistent Linux environments on one host."""


@app.command("version")
def version() -> None:
    """Print cloche's version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
