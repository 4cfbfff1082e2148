"""CLI commands of the network: egress policy and published routes (through the daemon's API)."""

from __future__ import annotations

from typing import Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption
from cloche.model.names import split_address

AddressArgument = Annotated[str, typer.Argument(help="USER/NAME")]
SpecArgument = Annotated[
    str,
    typer.Argument(
        help="https://DOMAIN[:ENV_PORT][/PATH], http://DOMAIN[:ENV_PORT][/PATH], "
        "tcp://HOST_PORT:ENV_PORT or udp://HOST_PORT:ENV_PORT",
        show_default=False,
    ),
]


@handle_errors
def egress(
    address: Annotated[str, typer.Argument(help="USER/NAME")],
    policy: Annotated[
        str | None,
        typer.Argument(
            help="open, none, or allow:CIDR,CIDR (e.g. allow:140.82.112.0/20,10.0.0.0/8); "
            "leave out to show the current one.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set what an environment may reach outside the host (applied while it runs)."""
    user, name = split_address(address)
    with remote.client() as client:
        if policy is None:
            shown = client.egress.get(user, name)
            line = f"egress of {address}: {shown.egress}"
        else:
            shown = changed = client.egress.set(user, name, policy)
            line = f"egress of {address}: {changed.egress} (was {changed.previous})"
    if as_json:
        remote.print_json(shown)
    else:
        console().print(line, highlight=False)


@handle_errors
def publish(address: AddressArgument, spec: SpecArgument, as_json: JsonOption = False) -> None:
    """Publish a port of an environment: HTTPS/HTTP through Caddy, or a raw TCP/UDP host port."""
    user, name = split_address(address)
    with remote.client() as client:
        answer = client.routes.publish(user, name, spec)
    if as_json:
        remote.print_json(answer)
        return
    verb = "published" if answer.changed else "already published"
    console().print(f"{verb} {answer.public} -> {answer.target}", highlight=False, soft_wrap=True)


@handle_errors
def unpublish(address: AddressArgument, spec: SpecArgument, as_json: JsonOption = False) -> None:
    """Withdraw a published route; the port is private again at once."""
    user, name = split_address(address)
    with remote.client() as client:
        answer = client.routes.unpublish(user, name, spec)
    if as_json:
        remote.print_json(answer)
        return
    console().print(f"unpublished {answer.spec} of {address}", highlight=False)


@handle_errors
def routes(
    address: Annotated[
        str | None,
        typer.Argument(help="USER/NAME, or USER for all of theirs; leave out for every route."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List published routes: where each is reached and where it leads."""
    user, name = split_address(address) if address and "/" in address else (address, None)
    with remote.client() as client:
        listed = client.routes.list(user, name)
    if as_json:
        remote.print_json(listed)
        return
    if not listed:
        console().print("no published routes", highlight=False)
        return
    from rich.table import Table

    table = Table("environment", "route", "reached at", "leads to")
    for item in listed:
        table.add_row(f"{item.user}/{item.name}", item.spec, item.public, item.target)
    console().print(table)


def register_network_commands(app: typer.Typer) -> None:
    """Add 'cloche egress', 'publish', 'unpublish' and 'routes' to the top-level app."""
    app.command("egress")(egress)
    app.command("publish")(publish)
    app.command("unpublish")(unpublish)
    app.command("routes")(routes)
