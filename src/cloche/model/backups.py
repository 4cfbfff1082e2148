"""Pure values of backups: repositories (with their secrets), records, ids, restic's refusals."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cloche.model.errors import Invalid, NotFound
from cloche.model.text import one_line

_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
_SFTP = re.compile(r"sftp:[^\s:@/]+@[^\s:/]+:/\S*")
_S3 = re.compile(r"s3:https?://[^\s/]+/[a-z0-9][a-z0-9.-]{1,62}(/\S*)?")
_BACKUP_ID = re.compile(r"[0-9a-f]{8,64}")

RepositoryKind = Literal["local", "sftp", "s3"]
# What adding a repository did: made a new one, or opened one there already.
RepositoryState = Literal["initialised", "opened"]

BACKUPS_DIRECTORY = "backups"
LOCAL_REPOSITORY = "local"
CATALOG_FILE = "backups.db"
CACHE_DIRECTORY = "cache"
RESTORE_DIRECTORY = "restore"
SCHEDULE_STAMP = "last-scheduled-backup"
SCHEDULE_INTERVAL_SECONDS = 24 * 3600.0
RESTIC_TIMEOUT_SECONDS = 600.0
# A backup, dump, check or prune of a large repository.
RESTIC_LONG_TIMEOUT_SECONDS = 6 * 3600.0


def backups_dir(state_dir: Path) -> Path:
    """Where the local repository, restic's cache, the catalog and restore files live."""
    return state_dir / BACKUPS_DIRECTORY


@dataclass(frozen=True)
class RepositoryView:
    """What may be shown of a repository: its name, kind and URL, never a secret."""

    name: str
    kind: RepositoryKind
    url: str


@dataclass(frozen=True)
class Repository:
    """A restic repository cloche knows: its URL, password and how to reach it (all secret)."""

    name: str
    url: str
    password: str = field(repr=False)
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    sftp_command: str | None = None

    @property
    def kind(self) -> RepositoryKind:
        """local, sftp or s3."""
        return repository_kind(self.url)

    def describe(self) -> RepositoryView:
        """What may be shown: name, kind and URL (never the password or keys)."""
        return RepositoryView(self.name, self.kind, self.url)

    def to_dict(self) -> dict[str, str]:
        """Every field, for the secrets file."""
        values = {
            "url": self.url,
            "password": self.password,
            "s3_access_key": self.s3_access_key,
            "s3_secret_key": self.s3_secret_key,
            "sftp_command": self.sftp_command,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class BackupRecord:
    """One backup cloche made, with restic's figures."""

    repository: str
    id: str
    user: str
    env: str
    time: str
    data_added: int
    total_bytes: int
    seconds: float


@dataclass(frozen=True)
class BackupEntry:
    """One backup as 'cloche backup list' shows it; the figures are None when unknown."""

    id: str
    repository: str
    environment: str  # USER/NAME
    time: str
    snapshot: str
    data_added: int | None
    total_bytes: int | None


@dataclass(frozen=True)
class Retention:
    """How many daily, weekly and monthly backups restic keeps per environment."""

    daily: int
    weekly: int
    monthly: int


def check_repository_name(name: str) -> str:
    """Return name when it can name a repository (lowercase word); raise Invalid otherwise."""
    if not _NAME.fullmatch(name):
        raise Invalid(
            f"Repository name {name!r} is not allowed; use lowercase letters, digits and '-', "
            "starting with a letter."
        )
    return name


def pick_repository(repositories: Mapping[str, Repository], name: str) -> Repository:
    """The repository called name; NotFound names the ones there are."""
    if name not in repositories:
        known = ", ".join(sorted(repositories)) or "none"
        raise NotFound(
            f"There is no backup repository {name!r} (known: {known}); add it with "
            "'cloche backup repo add'."
        )
    return repositories[name]


def restic_environment(
    repository: Repository, base: Mapping[str, str], cache_dir: str
) -> dict[str, str]:
    """The environment restic runs with: the repository, its password and S3 keys (no argv)."""
    environment = {key: value for key, value in base.items() if key in ("PATH", "HOME", "LANG")}
    environment.update(
        {
            "RESTIC_REPOSITORY": repository.url,
            "RESTIC_PASSWORD": repository.password,
            "RESTIC_CACHE_DIR": cache_dir,
        }
    )
    if repository.s3_access_key is not None:
        environment["AWS_ACCESS_KEY_ID"] = repository.s3_access_key
    if repository.s3_secret_key is not None:
        environment["AWS_SECRET_ACCESS_KEY"] = repository.s3_secret_key
    return environment


def restic_argv(repository: Repository, *arguments: str) -> list[str]:
    """restic with the repository's options (the SFTP command) and then arguments."""
    argv = ["restic"]
    if repository.sftp_command:
        argv += ["-o", f"sftp.command={repository.sftp_command}"]
    return [*argv, *arguments]


def backup_round_due(last_round: float | None, now: float) -> bool:
    """True when the daily backup round is due: a day after the last one (or none was stamped)."""
    return last_round is None or now - last_round >= SCHEDULE_INTERVAL_SECONDS


def repository_kind(url: str) -> RepositoryKind:
    """local, sftp or s3 for a repository URL; Invalid for anything else."""
    one_line(url, "The repository URL")
    if url.startswith("sftp:"):
        if not _SFTP.fullmatch(url):
            raise Invalid(f"{url!r} is not an SFTP repository; write it as sftp:user@host:/path.")
        return "sftp"
    if url.startswith("s3:"):
        if not _S3.fullmatch(url):
            raise Invalid(
                f"{url!r} is not an S3 repository; write it as s3:http://HOST:PORT/bucket."
            )
        return "s3"
    if url.startswith("/"):
        return "local"
    raise Invalid(
        f"{url!r} is not a repository URL; give an absolute path, sftp:user@host:/path or "
        "s3:http://HOST:PORT/bucket."
    )


def check_backup_id(backup_id: str) -> str:
    """Return a restic snapshot id (8 or more hex digits); raise Invalid otherwise."""
    if not _BACKUP_ID.fullmatch(backup_id):
        raise Invalid(
            f"{backup_id!r} is not a backup id; use the id 'cloche backup list' shows "
            "(8 hexadecimal digits)."
        )
    return backup_id


WRONG_PASSWORD = "wrong password or no key found"  # noqa: S105 (restic's message)


def is_wrong_password(stderr: str) -> bool:
    """True when restic refused the repository's password."""
    return WRONG_PASSWORD in stderr.lower()


def is_missing_repository(stderr: str) -> bool:
    """True when there is no repository at the URL yet (so 'restic init' is needed)."""
    lowered = stderr.lower()
    return any(
        words in lowered
        for words in (
            "unable to open config file",
            "repository does not exist",
            "is there a repository at the following location",
        )
    )
