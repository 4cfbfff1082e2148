"""'cloche user ...': users (tenants), their SSH keys and quotas, through the daemon's API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.errors import Invalid

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
    body: dict[str, Any] = {
        "name": name,
        "ssh_keys": [_read_key(path) for path in ssh_key],
        "role": role,
    }
    for key, value in (("max_envs", max_envs), ("cpu", cpu), ("memory", memory), ("disk", disk)):
        if value is not None:
            body[key] = value
    with remote.client() as client:
        user = client.post("/v1/users", json=body)
    if as_json:
        remote.print_json(user)
    else:
        console.print(
            f"added user {user['name']} (uid range {user['uid_base']}+{user['uid_size']})"
        )


@user_app.command("list")
@handle_errors
def user_list(as_json: JsonOption = False) -> None:
    """List users with their quotas and usage."""
    with remote.client() as client:
        listed = client.get("/v1/users")
    if as_json:
        remote.print_json(listed)
        return
    table = Table("name", "role", "envs", "cpu", "memory", "disk", "keys")
    for user in listed:
        table.add_row(
            user["name"],
            user["role"],
            f"{user['environments']}/{user['max_envs']}",
            str(user["cpu"]),
            user["memory"],
            user["disk"],
            str(user["keys"]),
        )
    console.print(table)


@user_app.command("show")
@handle_errors
def user_show(name: str, as_json: JsonOption = False) -> None:
    """Show one user: quotas, keys and environments."""
    with remote.client() as client:
        user = client.get(f"/v1/users/{name}")
    if as_json:
        remote.print_json(user)
        return
    for key in ("name", "role", "max_envs", "cpu", "memory", "disk", "uid_base", "uid_size"):
        console.print(f"{key:10} {user[key]}", highlight=False)
    for key in user["ssh_keys"]:
        console.print(f"key        {key['fingerprint']} {key['comment']}", highlight=False)
    for env in user["environment_names"]:
        console.print(f"env        {name}/{env}", highlight=False)


@user_app.command("set")
@handle_errors
def user_set(
    name: str,
    max_envs: Annotated[int | None, typer.Option(help="Most environments.")] = None,
    cpu: Annotated[int | None, typer.Option(help="CPUs in all.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory in all.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk in all.")] = None,
) -> None:
    """Change a user's quotas."""
    changes = {
        key: value
        for key, value in (("max_envs", max_envs), ("cpu", cpu), ("memory", memory), ("disk", disk))
        if value is not None
    }
    with remote.client() as client:
        client.patch(f"/v1/users/{name}", json=changes)
    console.print(f"updated quotas of {name}")


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
        answer = client.delete(f"/v1/users/{name}", params={"purge": purge})
        remote.run_operation(client, answer, no_wait, f"removed user {name}")


@key_app.command("add")
@handle_errors
def key_add(name: str, key_file: Path) -> None:
    """Add a public key to a user (it reaches every environment of theirs)."""
    with remote.client() as client:
        key = client.post(f"/v1/users/{name}/keys", json={"public_key": _read_key(key_file)})
    console.print(f"added key {key['fingerprint']} to {name}", highlight=False)


@key_app.command("rm")
@handle_errors
def key_rm(name: str, fingerprint: str) -> None:
    """Remove a public key (by its SHA256 fingerprint) from a user."""
    with remote.client() as client:
        client.delete(f"/v1/users/{name}/keys/{fingerprint}")
    console.print(f"removed key {fingerprint} from {name}", highlight=False)
