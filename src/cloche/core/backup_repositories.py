"""Use cases of backup repositories: add, list, remove, the local one, and picking one.

Repositories and their passwords live only in the secrets store (Context.secrets); nothing
here logs, audits or returns a password or key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.core.ports import BackupFiles, Restic, Secrets
from cloche.core.revert import Reverter
from cloche.model.audit import JsonValue
from cloche.model.backups import (
    LOCAL_REPOSITORY,
    RESTIC_TIMEOUT_SECONDS,
    Repository,
    RepositoryState,
    RepositoryView,
    backups_dir,
    check_repository_name,
    pick_repository,
    repository_kind,
)
from cloche.model.errors import Conflict, Invalid, NotFound
from cloche.model.process import Completed


def local_repository_path(state_dir: Path) -> Path:
    """Where the default local repository lives."""
    return backups_dir(state_dir) / LOCAL_REPOSITORY


def repository(context: Context, name: str | None) -> Repository:
    """The repository called name, or the default one (backups.default_repository)."""
    return pick_repository(
        context.host.secrets.load_repositories(context.state_dir),
        name or context.config.backups.default_repository,
    )


def repositories(context: Context, name: str | None) -> list[Repository]:
    """The repository called name, or every repository (by name) when name is None."""
    known = context.host.secrets.load_repositories(context.state_dir)
    if name:
        return [pick_repository(known, name)]
    return [known[each] for each in sorted(known)]


def run_restic(
    context: Context,
    repository: Repository,
    *arguments: str,
    doing: str,
    timeout: float = RESTIC_TIMEOUT_SECONDS,
    check: bool = True,
) -> Completed:
    """Run 'restic ARGUMENTS' against repository (judged unless check is False)."""
    return context.host.restic.run(
        context.state_dir, repository, arguments, doing=doing, timeout=timeout, check=check
    )


def open_or_init(restic: Restic, state_dir: Path, repository: Repository) -> RepositoryState:
    """'opened' an existing repository (its password checked) or 'initialised' a new one."""
    try:
        restic.run(state_dir, repository, ["cat", "config"], doing="open")
    except NotFound:
        restic.run(state_dir, repository, ["init"], doing="initialise the repository")
        return "initialised"
    return "opened"


def ensure_local_repository(
    state_dir: Path, secrets: Secrets, restic: Restic, files: BackupFiles
) -> bool:
    """Make the default local repository (generated password) unless it exists; True if made."""
    known = secrets.load_repositories(state_dir).get(LOCAL_REPOSITORY)
    if known is not None and files.local_repository_exists(known.url):
        return secrets.save_repository(state_dir, known)  # False unless it fixed permissions
    repository = known or Repository(
        name=LOCAL_REPOSITORY,
        url=str(local_repository_path(state_dir)),
        password=secrets.new_password(),
    )
    secrets.save_repository(state_dir, repository)
    open_or_init(restic, state_dir, repository)
    return True


def _check_options(
    url: str,
    password: str | None,
    s3_access_key: str | None,
    s3_secret_key: str | None,
    sftp_command: str | None,
) -> None:
    kind = repository_kind(url)
    # They travel in restic's environment and argv, where a NUL cannot go and a line break
    # would split the SFTP command.
    for value, what in (
        (password, "The password"),
        (s3_access_key, "The S3 access key"),
        (s3_secret_key, "The S3 secret key"),
        (sftp_command, "The SFTP command"),
    ):
        if value is not None and not value.strip().isprintable():
            raise Invalid(f"{what} holds a line break or a control character; give one line.")
    if (s3_access_key is None) != (s3_secret_key is None):
        raise Invalid("Give both --s3-access-key and --s3-secret-key, or neither.")
    if kind != "s3" and s3_access_key is not None:
        raise Invalid(f"S3 keys only apply to s3: repositories, not {kind} ones; drop them.")
    if kind != "sftp" and sftp_command is not None:
        raise Invalid(f"An SFTP command only applies to sftp: repositories, not {kind} ones.")
    if password is not None and not password.strip():
        raise Invalid("The password file is empty; put the repository's password in it.")


@dataclass(frozen=True)
class AddedRepository:
    """A repository added (or updated), and whether it was made new or opened."""

    repository: RepositoryView
    state: RepositoryState


@dataclass(frozen=True)
class ListedRepository:
    """A repository cloche knows, and whether it is the default."""

    repository: RepositoryView
    default: bool


def add_repository(
    context: Context,
    actor: str,
    name: str,
    url: str,
    *,
    password: str | None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    sftp_command: str | None = None,
) -> AddedRepository:
    """Add (or update) a repository: initialise it when new, else check the password."""
    details: dict[str, JsonValue] = {"url": url}
    state_dir = context.state_dir
    with audited(context, actor, "added backup repository", name, details):
        check_repository_name(name)
        _check_options(url, password, s3_access_key, s3_secret_key, sftp_command)
        repository = Repository(
            name=name,
            url=url,
            password=password.strip()
            if password is not None
            else context.host.secrets.new_password(),
            s3_access_key=s3_access_key,
            s3_secret_key=s3_secret_key,
            sftp_command=sftp_command,
        )
        previous = context.host.secrets.load_repositories(state_dir).get(name)
        with Reverter() as revert:
            # Kept before restic writes a key with it: a crash in between never leaves a
            # repository whose password nobody has.
            context.host.secrets.save_repository(state_dir, repository)
            revert.add(
                f"put back the entry of repository {name}",
                lambda: _put_back(context.host.secrets, state_dir, name, previous),
            )
            state = open_or_init(context.host.restic, state_dir, repository)
            revert.success()
        details["state"] = state
        return AddedRepository(repository.describe(), state)


def _put_back(secrets: Secrets, state_dir: Path, name: str, previous: Repository | None) -> None:
    if previous is None:
        secrets.remove_repository(state_dir, name)
    else:
        secrets.save_repository(state_dir, previous)


def list_repositories(context: Context) -> list[ListedRepository]:
    """Every repository (name, kind, URL; never a secret) and which is the default."""
    default = context.config.backups.default_repository
    return [
        ListedRepository(each.describe(), each.name == default)
        for each in repositories(context, None)
    ]


def remove_repository(context: Context, actor: str, name: str) -> None:
    """Forget a repository (its data stays where it is)."""
    with audited(context, actor, "removed backup repository", name):
        repository(context, name)
        if name == context.config.backups.default_repository:
            raise Conflict(
                f"Repository {name!r} is the default (backups.default_repository); name another "
                "default in the config first."
            )
        context.host.secrets.remove_repository(context.state_dir, name)
