"""Environment commands (create, list, info, start, ..., ssh), through the daemon's API."""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.names import split_address


@handle_errors
def create(
    address: Annotated[str, typer.Argument(help="USER/NAME")],
    image: Annotated[str | None, typer.Option(help="Image alias.")] = None,
    cpu: Annotated[int | None, typer.Option(help="CPUs.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory, e.g. 2GiB.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk, e.g. 20GiB.")] = None,
    processes: Annotated[int | None, typer.Option(help="Process limit.")] = None,
    profile: Annotated[str, typer.Option(help="standard, docker or strict.")] = "standard",
    no_wait: NoWaitOption = False,
) -> None:
    """Create an environment and wait until it runs."""
    user, name = split_address(address)
    body: dict[str, Any] = {"user": user, "name": name, "profile": profile}
    for key, value in (
        ("image", image),
        ("cpu", cpu),
        ("memory", memory),
        ("disk", disk),
        ("processes", processes),
    ):
        if value is not None:
            body[key] = value
    with remote.client() as client:
        answer = client.post("/v1/environments", json=body)
        remote.run_operation(client, answer, no_wait, f"created {user}/{name}")


@handle_errors
def list_(
    user: Annotated[str | None, typer.Option(help="Only this user's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List environments."""
    with remote.client() as client:
        listed = client.get("/v1/environments", params={"user": user} if user else None)
    if as_json:
        remote.print_json(listed)
        return
    table = Table("environment", "state", "address", "profile", "cpu", "memory", "disk")
    for env in listed:
        table.add_row(
            f"{env['user']}/{env['name']}",
            env["state"],
            env.get("address") or "",
            env["profile"],
            str(env["limits"]["cpu"]),
            env["limits"]["memory"],
            env["limits"]["disk"],
        )
    console.print(table)


@handle_errors
def info(address: str, as_json: JsonOption = False) -> None:
    """Show one environment: state, address, image, profile, limits, published routes."""
    with remote.client() as client:
        env = client.get(remote.environment_path(address))
    if as_json:
        remote.print_json(env)
        return
    for key in ("user", "name", "state", "status", "address", "image", "profile", "egress"):
        console.print(f"{key:9} {env.get(key) or ''}", highlight=False)
    limits = env["limits"]
    console.print(
        f"limits    cpu {limits['cpu']}, memory {limits['memory']}, disk {limits['disk']}, "
        f"processes {limits['processes']}",
        highlight=False,
    )
    console.print(f"routes    {', '.join(env.get('routes') or []) or 'none'}", highlight=False)


def _action(verb: str, past: str) -> Callable[..., None]:
    @handle_errors
    def command(address: str, no_wait: NoWaitOption = False) -> None:
        with remote.client() as client:
            answer = client.post(f"{remote.environment_path(address)}/{verb}")
            remote.run_operation(client, answer, no_wait, f"{past} {address}")

    command.__doc__ = f"{verb.capitalize()} an environment."
    return command


@handle_errors
def remove(address: str, yes: YesOption = False, no_wait: NoWaitOption = False) -> None:
    """Delete an environment and everything in it."""
    path = remote.environment_path(address)
    remote.confirm(f"Delete environment {address} and everything in it?", yes)
    with remote.client() as client:
        answer = client.delete(path)
        remote.run_operation(client, answer, no_wait, f"removed {address}")


@handle_errors
def resize(
    address: str,
    cpu: Annotated[int | None, typer.Option(help="CPUs.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk.")] = None,
    processes: Annotated[int | None, typer.Option(help="Process limit.")] = None,
) -> None:
    """Change an environment's limits (live where LXD allows)."""
    changes = {
        key: value
        for key, value in (
            ("cpu", cpu),
            ("memory", memory),
            ("disk", disk),
            ("processes", processes),
        )
        if value is not None
    }
    with remote.client() as client:
        env = client.patch(remote.environment_path(address), json=changes)
    limits = env["limits"]
    console.print(
        f"resized {address}: cpu {limits['cpu']}, memory {limits['memory']}, "
        f"disk {limits['disk']}, processes {limits['processes']}",
        highlight=False,
    )


@handle_errors
def exec_(
    address: str,
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    root: Annotated[bool, typer.Option("--root", help="Run as root.")] = False,
) -> None:
    """Run a command in an environment (as its user); stdin, output and exit status pass."""
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    with remote.client() as client:
        result = client.post(
            f"{remote.environment_path(address)}/exec",
            json={
                "command": command,
                "stdin_base64": base64.b64encode(stdin).decode(),
                "root": root,
            },
        )
    sys.stdout.buffer.write(base64.b64decode(result["stdout_base64"]))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(base64.b64decode(result["stderr_base64"]))
    sys.stderr.buffer.flush()
    raise typer.Exit(code=int(result["exit_code"]))


def _fetch_ssh_config(
    user: str, host: str | None, port: int | None, known_hosts: Path
) -> dict[str, str]:
    params: dict[str, Any] = {"known_hosts_path": str(known_hosts)}
    if host:
        params["host"] = host
    if port:
        params["port"] = port
    with remote.client() as client:
        answer: dict[str, str] = client.get(
            f"/v1/users/{quote(user, safe='')}/ssh-config", params=params
        )
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    known_hosts.write_text(answer["known_hosts"])
    return answer


HostOption = Annotated[
    str | None, typer.Option("--host", help="Name or address of this host as clients reach it.")
]
PortOption = Annotated[int | None, typer.Option("--port", help="Port of the host's sshd.")]


@handle_errors
def ssh_config(
    user: str,
    host: HostOption = None,
    port: PortOption = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(help="Where to write the pinned host keys (default ~/.ssh/cloche-USER)."),
    ] = None,
) -> None:
    """Print an ssh_config block per environment of USER, every host key pinned (no TOFU)."""
    path = (known_hosts or Path.home() / ".ssh" / f"cloche-{user}.known_hosts").absolute()
    typer.echo(_fetch_ssh_config(user, host, port, path)["config"], nl=False)


@handle_errors
def ssh(
    address: Annotated[str, typer.Argument(help="USER/NAME")],
    command: Annotated[list[str] | None, typer.Argument(help="A command to run, after --.")] = None,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Open an SSH session in an environment through the host's jump account."""
    user, name = split_address(address)
    with tempfile.TemporaryDirectory(prefix="cloche-ssh-") as directory:
        known_hosts = Path(directory) / "known_hosts"
        config = Path(directory) / "config"
        config.write_text(_fetch_ssh_config(user, host, port, known_hosts)["config"])
        status = subprocess.run(["ssh", "-F", str(config), name, *(command or [])], check=False)
    raise typer.Exit(code=status.returncode)


@handle_errors
def operation(
    operation_id: Annotated[str, typer.Argument(help="The id a --no-wait command printed.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow it until it ends.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a long operation (create, restore, backup...): its progress, or how it ended."""
    with remote.client() as client:
        if wait:
            with console.status(f"operation {operation_id}") as status:
                client.wait(operation_id, on_progress=status.update)
        shown = client.get(f"/v1/operations/{quote(operation_id, safe='')}")
    if as_json:
        remote.print_json(shown)
        return
    for key in ("id", "kind", "target", "status", "progress", "created_at", "finished_at"):
        if shown.get(key):
            console.print(f"{key:<12} {shown[key]}", highlight=False)
    error = shown.get("error")
    if isinstance(error, dict) and error.get("message"):
        console.print(f"{'error':<12} {error['message']}", highlight=False)


def register_environment_commands(app: typer.Typer) -> None:
    """Add the environment commands to the top-level app (cloche create, cloche list, ...)."""
    app.command("create")(create)
    app.command("list")(list_)
    app.command("info")(info)
    app.command("start")(_action("start", "started"))
    app.command("stop")(_action("stop", "stopped"))
    app.command("restart")(_action("restart", "restarted"))
    app.command("rm")(remove)
    app.command("resize")(resize)
    app.command(
        "exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(exec_)
    app.command("ssh-config")(ssh_config)
    app.command("operation")(operation)
    app.command("ssh", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        ssh
    )
