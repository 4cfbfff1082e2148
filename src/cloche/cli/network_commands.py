"""CLI commands of the network: an environment's egress policy (through the daemon's API)."""

from __future__ import annotations

from typing import Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption


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
    with remote.client() as client:
        if policy is None:
            answer = client.get(f"{remote.environment_path(address)}/egress")
        else:
            answer = client.patch(
                f"{remote.environment_path(address)}/egress", json={"egress": policy}
            )
    if as_json:
        remote.print_json(answer)
    elif policy is None:
        console.print(f"egress of {address}: {answer['egress']}", highlight=False)
    else:
        console.print(
            f"egress of {address}: {answer['egress']} (was {answer['previous']})", highlight=False
        )


def register_network_commands(app: typer.Typer) -> None:
    """Add 'cloche egress' to the top-level app."""
    app.command("egress")(egress)
