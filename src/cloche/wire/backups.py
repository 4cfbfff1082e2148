"""Off-host backups: repositories, backups, checks (request and response bodies)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cloche.wire.base import WireModel

RepositoryKind = Literal["local", "sftp", "s3"]


class AddRepository(WireModel):
    """POST /v1/backups/repositories (the password and keys are stored, never returned)."""

    name: str
    url: str
    password: str | None = Field(default=None, repr=False)
    s3_access_key: str | None = Field(default=None, repr=False)
    s3_secret_key: str | None = Field(default=None, repr=False)
    sftp_command: str | None = None


class RunBackup(WireModel):
    """POST /v1/backups: one environment (user and name) or all of them."""

    user: str | None = None
    name: str | None = None
    all: bool = False
    repository: str | None = None


class RestoreBackup(WireModel):
    """POST /v1/backups/{backup_id}/restore: as a new environment, or in place."""

    as_new: str | None = None
    in_place: bool = False
    repository: str | None = None


class CheckRepository(WireModel):
    """POST /v1/backups/check."""

    repository: str | None = None
    read_data: bool = False


class ApplyRetention(WireModel):
    """POST /v1/backups/forget."""

    repository: str | None = None


class RepositoryAdded(WireModel):
    """A repository added: name, kind and URL (never a secret), and whether it was new."""

    name: str
    kind: RepositoryKind
    url: str
    state: Literal["initialised", "opened"]


class Repository(WireModel):
    """A repository cloche knows (never a secret), and whether it is the default."""

    name: str
    kind: RepositoryKind
    url: str
    default: bool


class Backup(WireModel):
    """One backup of an environment; the figures are None when the catalog lacks them."""

    id: str
    repository: str
    # USER/NAME
    environment: str
    time: str
    snapshot: str
    data_added: int | None
    total_bytes: int | None


class RepositoryChecked(WireModel):
    """POST /v1/backups/check answered (a damaged repository is an error instead)."""

    repository: str
    ok: bool
    read_data: bool
