"""'cloche audit ...': the hash-chained audit log, through the daemon's API."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, error_console, handle_errors
from cloche.cli.remote import JsonOption

if TYPE_CHECKING:
    from cloche.wire import AuditEvent

audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


def _show_event(event: AuditEvent, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(event.model_dump(mode="json"), sort_keys=True))
        return
    colour = "green" if event.outcome == "succeeded" else "red"
    console().print(
        f"{event.time}  {event.actor:10} {event.action} {event.target} "
        f"[{colour}]{event.outcome}[/]",
        highlight=False,
    )


@audit_app.command("tail")
@handle_errors
def audit_tail(
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many events.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the last audit events (and follow new ones)."""
    with remote.client() as client:
        events = client.audit.tail(lines)
        for event in events:
            _show_event(event, as_json)
        seen = (events[-1].seq or 0) if events else 0
        while follow:
            time.sleep(1)
            for event in client.audit.tail(200):
                if (event.seq or 0) > seen:
                    _show_event(event, as_json)
                    seen = event.seq or 0


@audit_app.command("verify")
@handle_errors
def audit_verify() -> None:
    """Check the audit log's hash chain; name the first line that was edited, removed or moved."""
    with remote.client() as client:
        result = client.audit.verify()
    if result.ok:
        console().print(f"audit log intact: {result.count} events, hash chain verified")
        return
    error_console().print(
        f"[bold red]audit log tampered:[/] line {result.first_bad_line}: {result.reason}",
        highlight=False,
    )
    raise typer.Exit(code=1)
