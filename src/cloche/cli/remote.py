"""What the CLI commands that talk to the daemon share: the client, options, output, waiting."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from cloche.cli.common import console
from cloche.client.http import ApiClient
from cloche.model.errors import Invalid
from cloche.model.names import split_address

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Return the operation id at once instead of waiting.")
]


def client() -> ApiClient:
    """A client of the local daemon."""
    return ApiClient()


def print_json(value: Any) -> None:
    """Print a value as indented, sorted JSON (what every --json prints)."""
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; without one, require --yes instead of guessing."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Invalid(f"{question} needs confirmation; add --yes when there is no terminal.")
    if not typer.confirm(question, default=False):
        raise typer.Exit(code=1)


def run_operation(client: ApiClient, answer: dict[str, str], no_wait: bool, done: str) -> None:
    """Wait for a long operation with progress (or print its id with --no-wait)."""
    operation_id = answer["operation"]
    if no_wait:
        typer.echo(operation_id)
        return
    started = time.monotonic()
    with console.status(f"operation {operation_id}") as status:
        client.wait(operation_id, on_progress=status.update)
    console.print(f"{done} ({time.monotonic() - started:.1f} s)", highlight=False)


def environment_path(address: str) -> str:
    """The API path of USER/NAME, each part quoted so no name can reach another path."""
    user, env = split_address(address)
    return f"/v1/environments/{quote(user, safe='')}/{quote(env, safe='')}"
