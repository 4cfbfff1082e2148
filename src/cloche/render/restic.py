"""Pure: restic command lines and environments, backup tags, retention and restic's JSON output."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloche.model.backups import Repository, Retention, check_backup_id
from cloche.model.errors import Invalid

TAG_CLOCHE = "cloche"
SNAPSHOT_PREFIX = "backup-"


@dataclass(frozen=True)
class BackupTags:
    """The tags cloche puts on a backup, parsed back."""

    user: str
    env: str
    snapshot: str


@dataclass(frozen=True)
class ResticSnapshot:
    """One snapshot as 'restic snapshots --json' lists it."""

    id: str
    short_id: str
    time: str
    tags: tuple[str, ...]
    paths: tuple[str, ...] = field(default_factory=tuple)


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


def forget_arguments(retention: Retention, user: str, env: str) -> list[str]:
    """'restic forget' of one environment's backups beyond the retention (prune comes after)."""
    return [
        "forget",
        "--tag",
        f"{TAG_CLOCHE},user={user},env={env}",
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


def _json_lines(output: str) -> list[dict[str, Any]]:
    messages = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            messages.append(value)
    return messages


def backup_summary(output: str) -> dict[str, Any]:
    """The summary message of 'restic backup --json' (snapshot_id, data_added, ...)."""
    for message in reversed(_json_lines(output)):
        if message.get("message_type") == "summary":
            return dict(message)
    raise Invalid("restic did not print a backup summary; check the restic version (0.14+).")


def parse_snapshots(output: str) -> list[ResticSnapshot]:
    """'restic snapshots --json' as typed snapshots, oldest first."""
    try:
        raw = json.loads(output or "[]")
    except ValueError as error:
        raise Invalid(f"restic printed snapshots that are not JSON ({error}); retry.") from None
    snapshots = [
        ResticSnapshot(
            id=str(item["id"]),
            short_id=str(item.get("short_id") or str(item["id"])[:8]),
            time=str(item.get("time", "")),
            tags=tuple(item.get("tags") or ()),
            paths=tuple(item.get("paths") or ()),
        )
        for item in raw or []
    ]
    return sorted(snapshots, key=lambda snapshot: snapshot.time)
