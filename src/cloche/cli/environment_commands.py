"""Environment commands (create, list, info, start, ..., ssh), through the daemon's API."""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.names import split_address

if TYPE_CHECKING:
    from cloche.model.records import Profile
    from cloche.wire import Limits


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
    with remote.client() as client:
        started = client.environments.create(
            user,
            name,
            image=image,
            # Any text goes through: the daemon's refusal names the choices.
            profile=cast("Profile", profile),
            cpu=cpu,
            memory=memory,
            disk=disk,
            processes=processes,
        )
        remote.run_operation(started, no_wait, f"created {user}/{name}")


@handle_errors
def list_(
    user: Annotated[str | None, typer.Option(help="Only this user's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List environments."""
    with remote.client() as client:
        listed = client.environments.list(user or None)
    if as_json:
        remote.print_json(listed)
        return
    from rich.table import Table

    table = Table("environment", "state", "address", "profile", "cpu", "memory", "disk")
    for env in listed:
        table.add_row(
            f"{env.user}/{env.name}",
            env.state,
            env.address or "",
            env.profile,
            str(env.limits.cpu),
            env.limits.memory,
            env.limits.disk,
        )
    console().print(table)


@handle_errors
def info(address: str, as_json: JsonOption = False) -> None:
    """Show one environment: state, address, image, profile, limits, published routes."""
    user, name = split_address(address)
    with remote.client() as client:
        env = client.environments.get(user, name)
    if as_json:
        remote.print_json(env)
        return
    shown = (
        ("user", env.user),
        ("name", env.name),
        ("state", env.state),
        ("status", env.status),
        ("address", env.address),
        ("image", env.image),
        ("profile", env.profile),
        ("egress", env.egress),
    )
    for key, value in shown:
        console().print(f"{key:9} {value or ''}", highlight=False)
    console().print(f"limits    {_limits(env.limits)}", highlight=False)
    console().print(f"routes    {', '.join(env.routes) or 'none'}", highlight=False)


def _limits(limits: Limits) -> str:
    return (
        f"cpu {limits.cpu}, memory {limits.memory}, disk {limits.disk}, "
        f"processes {limits.processes}"
    )


def _action(verb: Literal["start", "stop", "restart"], past: str) -> Callable[..., None]:
    @handle_errors
    def command(address: str, no_wait: NoWaitOption = False) -> None:
        user, name = split_address(address)
        with remote.client() as client:
            environments = client.environments
            action = {
                "start": environments.start,
                "stop": environments.stop,
                "restart": environments.restart,
            }[verb]
            remote.run_operation(action(user, name), no_wait, f"{past} {address}")

    command.__doc__ = f"{verb.capitalize()} an environment."
    return command


@handle_errors
def remove(address: str, yes: YesOption = False, no_wait: NoWaitOption = False) -> None:
    """Delete an environment and everything in it."""
    user, name = split_address(address)
    remote.confirm(f"Delete environment {address} and everything in it?", yes)
    with remote.client() as client:
        started = client.environments.remove(user, name)
        remote.run_operation(started, no_wait, f"removed {address}")


@handle_errors
def resize(
    address: str,
    cpu: Annotated[int | None, typer.Option(help="CPUs.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory.")] = None,
    disk: Annotated[str | None, typer.Option(help="Disk.")] = None,
    processes: Annotated[int | None, typer.Option(help="Process limit.")] = None,
) -> None:
    """Change an environment's limits (live where LXD allows)."""
    user, name = split_address(address)
    with remote.client() as client:
        env = client.environments.resize(
            user, name, cpu=cpu, memory=memory, disk=disk, processes=processes
        )
    console().print(f"resized {address}: {_limits(env.limits)}", highlight=False)


@handle_errors
def exec_(
    address: str,
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    root: Annotated[bool, typer.Option("--root", help="Run as root.")] = False,
) -> None:
    """Run a command in an environment (as its user); stdin, output and exit status pass."""
    user, name = split_address(address)
    stdin = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    with remote.client() as client:
        result = client.environments.exec(user, name, command, stdin=stdin, root=root)
    sys.stdout.buffer.write(base64.b64decode(result.stdout_base64))
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(base64.b64decode(result.stderr_base64))
    sys.stderr.buffer.flush()
    raise typer.Exit(code=result.exit_code)


def _fetch_ssh_config(
    user: str,
    host: str | None,
    port: int | None,
    known_hosts: Path,
    identity_file: Path | None = None,
) -> str:
    """The ssh_config text for user's environments, its pinned host keys written to known_hosts."""
    with remote.client() as client:
        answer = client.users.ssh_config(
            user,
            str(known_hosts),
            host=host or None,
            port=port or None,
            identity_file=None if identity_file is None else str(identity_file.absolute()),
        )
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    known_hosts.write_text(answer.known_hosts)
    return answer.config


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
    identity_file: Annotated[
        Path | None,
        typer.Option(help="The private key every block names (ssh -i does not reach the jump)."),
    ] = None,
) -> None:
    """Print an ssh_config block per environment of USER, every host key pinned (no TOFU)."""
    path = (known_hosts or Path.home() / ".ssh" / f"cloche-{user}.known_hosts").absolute()
    typer.echo(_fetch_ssh_config(user, host, port, path, identity_file), nl=False)


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
        config.write_text(_fetch_ssh_config(user, host, port, known_hosts))
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
            with console().status(f"operation {operation_id}") as status:
                client.operations.wait(operation_id, on_progress=status.update)
        shown = client.operations.get(operation_id)
    if as_json:
        remote.print_json(shown)
        return
    fields = (
        ("id", shown.id),
        ("kind", shown.kind),
        ("target", shown.target),
        ("status", shown.status),
        ("progress", shown.progress),
        ("created_at", shown.created_at),
        ("finished_at", shown.finished_at),
        ("error", shown.error.message if shown.error is not None else None),
    )
    for key, value in fields:
        if value:
            console().print(f"{key:<12} {value}", highlight=False)


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
