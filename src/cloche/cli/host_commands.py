"""'cloche host ...': bootstrap and check this host (in-process, before any daemon exists).

'host bans' is the exception: bans live in the daemon, so it asks the daemon's API.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import STATE_DIR, config_path, console, handle_errors
from cloche.cli.remote import JsonOption
from cloche.model.errors import HostFailure

if TYPE_CHECKING:
    from cloche.core.ports import Files


def _core_host() -> ModuleType:
    # Loaded on use: LXD's client and the host code are not needed by every other command.
    from cloche.core import host

    return host


def _host_files() -> Files:
    from cloche.core.context import HostEffects

    return HostEffects().files


class TlsMode(StrEnum):
    """Where Caddy gets certificates for https routes (config key proxy.tls)."""

    acme = "acme"
    internal = "internal"


host_app = typer.Typer(help="Set up this host and check its health.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Config file to use (default /etc/cloche/config.yaml)."),
]


@host_app.command("init")
@handle_errors
def init(
    config: ConfigOption = None,
    no_install: Annotated[
        bool, typer.Option("--no-install", help="Name missing packages instead of installing.")
    ] = False,
    pool: Annotated[str | None, typer.Option(help="LXD storage pool name.")] = None,
    pool_size: Annotated[
        str | None, typer.Option(help="Size of the loop-file pool, e.g. 40GiB.")
    ] = None,
    storage_device: Annotated[
        str | None, typer.Option(help="Put the pool on this block device or partition.")
    ] = None,
    existing_pool: Annotated[
        str | None, typer.Option(help="Use this existing LXD pool as it is.")
    ] = None,
    bridge: Annotated[str | None, typer.Option(help="LXD bridge name.")] = None,
    subnet: Annotated[
        str | None, typer.Option(help="Private IPv4 range of the bridge, e.g. 10.120.0.0/16.")
    ] = None,
    tls: Annotated[
        TlsMode | None,
        typer.Option(
            help="Certificates for https routes: acme (Let's Encrypt/ZeroSSL; DNS must point "
            "here) or internal (Caddy's own CA, for tests and private hosts)."
        ),
    ] = None,
    acme_email: Annotated[
        str | None, typer.Option(help="E-mail address given to the ACME CA (expiry notices).")
    ] = None,
) -> None:
    """Install, start and configure everything cloche needs; safe to run again at any time."""
    overrides: dict[str, object] = {
        "storage.pool": existing_pool or pool,
        "storage.size": pool_size,
        "network.bridge": bridge,
        "network.subnet": subnet,
        "proxy.tls": tls.value if tls is not None else None,
        "proxy.acme_email": acme_email,
    }
    if storage_device:
        overrides.update({"storage.source": "device", "storage.device": storage_device})
    if existing_pool:
        overrides["storage.source"] = "existing"
    with console().status("host init") as status:
        report = _core_host().init_host(
            config or config_path(),
            STATE_DIR,
            overrides=overrides,
            install=not no_install,
            progress=status.update,
        )
    for change in report.changes:
        console().print(f"[green]changed[/]  {change}", highlight=False)
    if report.unchanged:
        console().print(f"[dim]unchanged {', '.join(report.unchanged)}[/]", highlight=False)
    verdict = "host ready" if report.changes else "host already ready; nothing changed"
    console().print(f"{verdict} ({report.seconds:.1f} s)")


@host_app.command("status")
@handle_errors
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One line per component with OK or the problem and its fix; exits 1 if any is wrong."""
    path = config or config_path()

    def check_image() -> str:
        from cloche.core.context import image_ports
        from cloche.core.images import image_status

        resolved = _core_host().resolve_config(_host_files(), path, {})
        ok, detail = image_status(resolved, image_ports(resolved, STATE_DIR))
        if not ok:
            raise HostFailure(detail)
        return detail

    results = _core_host().host_status(
        path, extra_checks={"image": check_image}, state_dir=STATE_DIR
    )
    if as_json:
        console().print_json(
            json.dumps(
                [{"component": r.component, "ok": r.ok, "detail": r.detail} for r in results]
            )
        )
    else:
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for result in results:
            mark = "[green]OK[/]" if result.ok else "[red]FAIL[/]"
            table.add_row(result.component, mark, result.detail)
        console().print(table)
    if not all(result.ok for result in results):
        raise typer.Exit(code=1)


@host_app.command("bans")
@handle_errors
def bans(
    lift: Annotated[
        str | None,
        typer.Option("--lift", metavar="ADDRESS", help="End this address's ban now."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List addresses banned for failing to sign in to sshd, or lift one ban with --lift."""
    with remote.client() as client:
        if lift is not None:
            lifted = client.bans.lift(lift)
            if as_json:
                remote.print_json(lifted)
            else:
                console().print(f"lifted the ban of {lifted.address}", highlight=False)
            return
        listed = client.bans.list()
    if as_json:
        remote.print_json(listed)
        return
    if not listed:
        console().print("no banned addresses", highlight=False)
        return
    from rich.table import Table

    table = Table("address", "until", "failures", "since")
    for ban in listed:
        table.add_row(ban.address, ban.until, str(ban.failures), ban.created)
    console().print(table)
