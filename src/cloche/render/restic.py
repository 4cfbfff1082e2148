"""Pure: restic's arguments for backup, dump and forget, and the tags cloche puts on a backup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cloche.model.backups import Retention, check_backup_id

TAG_CLOCHE = "cloche"
SNAPSHOT_PREFIX = "backup-"


@dataclass(frozen=True)
class BackupTags:
    """The tags cloche puts on a backup, parsed back."""

    user: str
    env: str
    snapshot: str


def stdin_filename(user: str, env: str) -> str:
    """The file name a backup of user/env has inside restic."""
    return f"{user}-{env}.tar"


def backup_tags(user: str, env: str, snapshot: str) -> list[str]:
    """The tags of a backup: cloche's mark, then user, environment and LXD snapshot."""
    return [TAG_CLOCHE, f"user={user}", f"env={env}", f"snapshot={snapshot}"]


def backup_arguments(user: str, env: str, snapshot: str) -> list[str]:
    """'restic backup' arguments for an export streamed on stdin."""
    arguments = ["backup", "--stdin", "--stdin-filename", stdin_filename(user, env), "--json"]
    for tag in backup_tags(user, env, snapshot):
        arguments += ["--tag", tag]
    return arguments


def parse_tags(tags: Sequence[str]) -> BackupTags | None:
    """user, env and snapshot from a snapshot's tags, or None when cloche did not make it."""
    if TAG_CLOCHE not in tags:
        return None
    values = dict(tag.split("=", 1) for tag in tags if "=" in tag)
    if "user" not in values or "env" not in values:
        return None
    return BackupTags(values["user"], values["env"], values.get("snapshot", ""))


def snapshot_name(moment: datetime) -> str:
    """The LXD snapshot a backup is taken from, e.g. backup-20240131t235959z."""
    return SNAPSHOT_PREFIX + moment.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")


def environment_filter(user: str, env: str) -> str:
    """The --tag filter that selects the backups of one environment (restic ANDs a comma list)."""
    return f"{TAG_CLOCHE},user={user},env={env}"


def snapshots_arguments(address: tuple[str, str] | None) -> list[str]:
    """'restic snapshots' of cloche's backups (of one environment when given), as JSON."""
    tag = TAG_CLOCHE if address is None else environment_filter(*address)
    return ["snapshots", "--json", "--tag", tag]


def check_arguments(*, read_data: bool) -> list[str]:
    """'restic check', reading every pack with read_data."""
    return ["check", *(["--read-data"] if read_data else [])]


def forget_arguments(retention: Retention, user: str, env: str) -> list[str]:
    """'restic forget' of one environment's backups beyond the retention (prune comes after)."""
    return [
        "forget",
        "--tag",
        environment_filter(user, env),
        "--group-by",
        "paths",
        "--keep-daily",
        str(retention.daily),
        "--keep-weekly",
        str(retention.weekly),
        "--keep-monthly",
        str(retention.monthly),
        "--json",
    ]


def dump_arguments(backup_id: str, user: str, env: str) -> list[str]:
    """'restic dump' of a backup's tarball to stdout."""
    return ["dump", check_backup_id(backup_id), "/" + stdin_filename(user, env)]
