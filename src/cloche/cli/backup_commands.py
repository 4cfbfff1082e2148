"""'cloche backup': restic repositories, backups, restores, checks (through the daemon's API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption, NoWaitOption, YesOption
from cloche.model.errors import Invalid
from cloche.model.names import split_address

backup_app = typer.Typer(
    help="Off-host backups with restic: repositories, backup, list, restore, check.",
    no_args_is_help=True,
)
repo_app = typer.Typer(help="restic repositories (kept in a root-only file).", no_args_is_help=True)
backup_app.add_typer(repo_app, name="repo")

RepoOption = Annotated[
    str | None,
    typer.Option("--repo", help="Repository name (default: backups.default_repository)."),
]


def _size(value: int | None) -> str:
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise Invalid(f"Cannot read the password file {path}: {error.strerror}.") from None


@repo_app.command("add")
@handle_errors
def repo_add(
    name: str,
    url: Annotated[str, typer.Argument(help="A path, sftp:user@host:/path or s3:http://H:P/b.")],
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the password (default: generate one).")
    ] = None,
    s3_access_key: Annotated[str | None, typer.Option(help="S3 access key id.")] = None,
    s3_secret_key: Annotated[str | None, typer.Option(help="S3 secret access key.")] = None,
    sftp_command: Annotated[
        str | None, typer.Option(help="restic's sftp.command, e.g. 'ssh -i KEY u@h -s sftp'.")
    ] = None,
) -> None:
    """Add a repository: initialise it when new, else check its password."""
    password = _read_secret(password_file) if password_file is not None else None
    with remote.client() as client:
        answer = client.backups.repositories.add(
            name,
            url,
            password=password,
            s3_access_key=s3_access_key,
            s3_secret_key=s3_secret_key,
            sftp_command=sftp_command,
        )
    console().print(f"{answer.state} repository {answer.name} ({answer.url})", highlight=False)


@repo_app.command("list")
@handle_errors
def repo_list(as_json: JsonOption = False) -> None:
    """List repositories (never their passwords)."""
    with remote.client() as client:
        listed = client.backups.repositories.list()
    if as_json:
        remote.print_json(listed)
        return
    from rich.table import Table

    table = Table("name", "kind", "url", "default")
    for repo in listed:
        table.add_row(repo.name, repo.kind, repo.url, "yes" if repo.default else "")
    console().print(table)


@repo_app.command("rm")
@handle_errors
def repo_rm(name: str) -> None:
    """Forget a repository (its data stays where it is)."""
    with remote.client() as client:
        client.backups.repositories.remove(name)
    console().print(f"removed repository {name}", highlight=False)


@backup_app.command("run")
@handle_errors
def run(
    address: Annotated[str | None, typer.Argument(help="USER/NAME")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every environment.")] = False,
    repo: RepoOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Back up an environment (or --all): snapshot, export, stream into restic."""
    if (address is None) == (not all_):
        raise Invalid("Name one environment as USER/NAME or give --all.")
    with remote.client() as client:
        if address is None:
            started = client.backups.run_all(repository=repo)
        else:
            started = client.backups.run(*split_address(address), repository=repo)
        remote.run_operation(started, no_wait, f"backed up {address or 'all environments'}")


@backup_app.command("list")
@handle_errors
def list_(
    address: Annotated[str | None, typer.Argument(help="USER/NAME")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """List backups: id, environment, time and the size each added."""
    user, name = split_address(address) if address is not None else (None, None)
    with remote.client() as client:
        listed = client.backups.list(user, name, repository=repo)
    if as_json:
        remote.print_json(listed)
        return
    from rich.table import Table

    table = Table("id", "repository", "environment", "time", "added", "size")
    for item in listed:
        table.add_row(
            item.id,
            item.repository,
            item.environment,
            item.time[:19],
            _size(item.data_added),
            _size(item.total_bytes),
        )
    console().print(table)


@backup_app.command("restore")
@handle_errors
def restore(
    backup_id: str,
    as_new: Annotated[
        str | None, typer.Option("--as-new", help="Restore as a new environment NAME.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace the environment it was taken from.")
    ] = False,
    repo: RepoOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Restore a backup as a new environment (new MAC, machine-id, host keys) or in place."""
    with remote.client() as client:
        started = client.backups.restore(
            backup_id, as_new=as_new, in_place=in_place, repository=repo
        )
        remote.run_operation(started, no_wait, f"restored backup {backup_id}")


@backup_app.command("rm")
@handle_errors
def remove(
    backup_id: str,
    repo: RepoOption = None,
    yes: YesOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Remove one backup for good: forget it, then prune what no other backup shares."""
    remote.confirm(f"Remove backup {backup_id} for good?", yes)
    with remote.client() as client:
        started = client.backups.remove(backup_id, repository=repo or None)
        remote.run_operation(started, no_wait, f"removed backup {backup_id}")


@backup_app.command("check")
@handle_errors
def check(
    repo: RepoOption = None,
    read_data: Annotated[
        bool, typer.Option("--read-data", help="Also read and verify every pack file.")
    ] = False,
) -> None:
    """Check a repository with 'restic check'; non-zero exit when it is damaged."""
    with remote.client() as client:
        answer = client.backups.check(repository=repo, read_data=read_data)
    console().print(f"repository {answer.repository} is intact", highlight=False)


@backup_app.command("forget")
@handle_errors
def forget(repo: RepoOption = None, no_wait: NoWaitOption = False) -> None:
    """Apply retention (backups.keep_*) per environment, then prune the repository."""
    with remote.client() as client:
        started = client.backups.forget(repository=repo)
        remote.run_operation(started, no_wait, "applied retention")
