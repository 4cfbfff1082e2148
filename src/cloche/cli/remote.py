"""What the CLI commands that talk to the daemon share: the client, options, output, waiting."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from cloche.cli.common import console
from cloche.model.errors import Invalid

if TYPE_CHECKING:
    from pydantic import BaseModel

    from cloche.client import Client, OperationHandle

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Return the operation id at once instead of waiting.")
]


def local_client() -> Client:
    """A client of the local daemon (CLOCHE_SOCKET overrides its socket)."""
    # httpx, pydantic and the wire models load only for the commands that talk to the daemon.
    from cloche.client import Client

    return Client()


# The seam tests use to point the commands at an app in the same process.
client_factory: Callable[[], Client] = local_client


def client() -> Client:
    """The client every command talks to the daemon through."""
    return client_factory()


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    """Print a model (or a list of them) as indented, sorted JSON (what every --json prints)."""
    shown = (
        [each.model_dump(mode="json") for each in value]
        if isinstance(value, Sequence)
        else value.model_dump(mode="json")
    )
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, require --yes instead of guessing."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Invalid(f"{question} needs confirmation; add --yes when there is no terminal.")
    if not typer.confirm(question, default=False):
        raise typer.Exit(code=1)


def run_operation(operation: OperationHandle, no_wait: bool, done: str) -> None:
    """Wait for a long operation with progress (or print its id with --no-wait)."""
    if no_wait:
        typer.echo(operation.id)
        return
    started = time.monotonic()
    with console().status(f"operation {operation.id}") as status:
        operation.wait(on_progress=status.update)
    console().print(f"{done} ({time.monotonic() - started:.1f} s)", highlight=False)
