"""'cloche user ...': users (tenants), their SSH keys and quotas, through the daemon's API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.errors import Invalid

if TYPE_CHECKING:
    from cloche.model.records import Role

user_app = typer.Typer(help="Users (tenants): accounts, keys and quotas.", no_args_is_help=True)
key_app = typer.Typer(help="A user's SSH public keys.", no_args_is_help=True)
user_app.add_typer(key_app, name="key")


def _read_key(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise Invalid(
            f"Cannot read the key file {path}: {error.strerror}; give a .pub file."
        ) from None


# Users ---------------------------------------------------------------------------------------


@user_app.command("add")
@handle_errors
def user_add(
    name: str,
    ssh_key: Annotated[list[Path], typer.Option("--ssh-key", help="A public key file (.pub).")],
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    max_envs: Annotated[int | None, typer.Option(help="Most environments.")] = None,
    cpu: Annotated[int | None, typer.Option(help="CPUs in all.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory in all, e.g. 8GiB.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk in all, e.g. 50GiB.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user: a tenant with their own LXD project, uid range and quotas."""
    keys = [_read_key(path) for path in ssh_key]
    with remote.client() as client:
        user = client.users.add(
            name,
            keys,
            # Any text goes through: the daemon's refusal names the choices.
            role=cast("Role", role),
            max_envs=max_envs,
            cpu=cpu,
            memory=memory,
            disk=disk,
        )
    if as_json:
        remote.print_json(user)
    else:
        console().print(f"added user {user.name} (uid range {user.uid_base}+{user.uid_size})")


@user_app.command("list")
@handle_errors
def user_list(as_json: JsonOption = False) -> None:
    """List users with their quotas and usage."""
    with remote.client() as client:
        listed = client.users.list()
    if as_json:
        remote.print_json(listed)
        return
    from rich.table import Table

    table = Table("name", "role", "envs", "cpu", "memory", "disk", "keys")
    for user in listed:
        table.add_row(
            user.name,
            user.role,
            f"{user.environments}/{user.max_envs}",
            str(user.cpu),
            user.memory,
            user.disk,
            str(user.keys),
        )
    console().print(table)


@user_app.command("show")
@handle_errors
def user_show(name: str, as_json: JsonOption = False) -> None:
    """Show one user: quotas, keys and environments."""
    with remote.client() as client:
        user = client.users.get(name)
    if as_json:
        remote.print_json(user)
        return
    shown = (
        ("name", user.name),
        ("role", user.role),
        ("max_envs", user.max_envs),
        ("cpu", user.cpu),
        ("memory", user.memory),
        ("disk", user.disk),
        ("uid_base", user.uid_base),
        ("uid_size", user.uid_size),
        ("host_acct", user.host_account or "-"),
    )
    for label, value in shown:
        console().print(f"{label:10} {value}", highlight=False)
    for key in user.ssh_keys:
        console().print(f"key        {key.fingerprint} {key.comment}", highlight=False)
    for env in user.environment_names:
        console().print(f"env        {name}/{env}", highlight=False)


@user_app.command("set")
@handle_errors
def user_set(
    name: str,
    max_envs: Annotated[int | None, typer.Option(help="Most environments.")] = None,
    cpu: Annotated[int | None, typer.Option(help="CPUs in all.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory in all.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk in all.")] = None,
    host_account: Annotated[
        str | None,
        typer.Option(help="The host account that may call the daemon as this user."),
    ] = None,
    no_host_account: Annotated[
        bool, typer.Option(help="No host account may call the daemon as this user.")
    ] = False,
) -> None:
    """Change a user's quotas, or the host account that acts as them on the daemon's socket."""
    quotas = any(value is not None for value in (max_envs, cpu, memory, disk))
    with remote.client() as client:
        mapping = host_account is not None or no_host_account
        if mapping:
            client.users.set_host_account(name, None if no_host_account else host_account)
            console().print(
                f"host account of {name}: {'none' if no_host_account else host_account}"
            )
        if quotas or not mapping:
            client.users.set_quota(name, max_envs=max_envs, cpu=cpu, memory=memory, disk=disk)
            console().print(f"updated quotas of {name}")


@user_app.command("rm")
@handle_errors
def user_rm(
    name: str,
    purge: Annotated[bool, typer.Option(help="Also delete the user's environments.")] = False,
    yes: YesOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Remove a user (refused while they have environments, unless --purge)."""
    remote.confirm(f"Remove user {name}{' and all their environments' if purge else ''}?", yes)
    with remote.client() as client:
        started = client.users.remove(name, purge=purge)
        remote.run_operation(started, no_wait, f"removed user {name}")


@key_app.command("add")
@handle_errors
def key_add(name: str, key_file: Path) -> None:
    """Add a public key to a user (it reaches every environment of theirs)."""
    public_key = _read_key(key_file)
    with remote.client() as client:
        key = client.keys.add(name, public_key)
    console().print(f"added key {key.fingerprint} to {name}", highlight=False)


@key_app.command("rm")
@handle_errors
def key_rm(name: str, fingerprint: str) -> None:
    """Remove a public key (by its SHA256 fingerprint) from a user."""
    with remote.client() as client:
        client.keys.remove(name, fingerprint)
    console().print(f"removed key {fingerprint} from {name}", highlight=False)
