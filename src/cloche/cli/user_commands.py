"""'cloche user ...': users (tenants), their SSH keys and quotas, through the daemon's API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.errors import HostFailure, Invalid
from cloche.model.sshkeys import parse_public_keys

if TYPE_CHECKING:
    from cloche.model.records import Role
    from cloche.wire import KeyPush

user_app = typer.Typer(help="Users (tenants): accounts, keys and quotas.", no_args_is_help=True)
key_app = typer.Typer(help="A user's SSH public keys.", no_args_is_help=True)
user_app.add_typer(key_app, name="key")


def _read_keys(path: Path) -> list[str]:
    """Each public key line of a key file, the whole file refused on its first bad line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise Invalid(f"Cannot read the key file {path}: {reason}; give a .pub file.") from None
    return [key.line for key in parse_public_keys(text, f"The key file {path}")]


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
    keys = [line for path in ssh_key for line in _read_keys(path)]
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
        ("max_egress", user.max_egress),
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
    max_egress: Annotated[
        str | None,
        typer.Option(help="The widest egress the user may set: none, allow or open."),
    ] = None,
    host_account: Annotated[
        str | None,
        typer.Option(help="The host account that may call the daemon as this user."),
    ] = None,
    no_host_account: Annotated[
        bool, typer.Option(help="No host account may call the daemon as this user.")
    ] = False,
) -> None:
    """Change a user's quotas, or the host account that acts as them on the daemon's socket."""
    quotas = any(value is not None for value in (max_envs, cpu, memory, disk, max_egress))
    with remote.client() as client:
        mapping = host_account is not None or no_host_account
        if mapping:
            client.users.set_host_account(name, None if no_host_account else host_account)
            console().print(
                f"host account of {name}: {'none' if no_host_account else host_account}"
            )
        if quotas or not mapping:
            client.users.set_quota(
                name, max_envs=max_envs, cpu=cpu, memory=memory, disk=disk, max_egress=max_egress
            )
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
def key_add(name: str, key_file: Path, as_json: JsonOption = False) -> None:
    """Add a file's public keys to a user, all or none (they reach every environment of theirs)."""
    lines = _read_keys(key_file)
    with remote.client() as client:
        added = (
            [client.keys.add(name, lines[0])]
            if len(lines) == 1
            else client.keys.add_many(name, lines)
        )
    if as_json:
        remote.print_json(added[0] if len(added) == 1 else added)
    else:
        for key in added:
            console().print(f"added key {key.fingerprint} to {name}", highlight=False)
    _report_push(name, added[-1].push, quiet=as_json)


@key_app.command("rm")
@handle_errors
def key_rm(name: str, fingerprint: str, as_json: JsonOption = False) -> None:
    """Remove a public key (by its SHA256 fingerprint) from a user; their jump sessions end."""
    with remote.client() as client:
        removed = client.keys.remove(name, fingerprint)
    if as_json:
        remote.print_json(removed)
    else:
        console().print(f"removed key {fingerprint} from {name}", highlight=False)
    _report_push(name, removed.push, quiet=as_json)


def _report_push(user: str, push: KeyPush, *, quiet: bool) -> None:
    """Say which environments wait for the keys; fail when a running one did not take them."""
    for env in [] if quiet else push.waiting:
        console().print(
            f"{user}/{env} is stopped: it takes the current keys when it next starts",
            highlight=False,
        )
    if push.failed:
        reasons = "; ".join(f"{user}/{env}: {why}" for env, why in sorted(push.failed.items()))
        raise HostFailure(
            f"The key change is recorded but did not reach {reasons}; restart those "
            "environments (they take the current keys at start) or run the command again."
        )
