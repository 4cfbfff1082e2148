"""Pure: what restic prints, parsed (snapshots, backup summary, check complaint) and listed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloche.model.backups import BackupEntry, BackupRecord
from cloche.model.errors import Invalid
from cloche.render.restic import parse_tags

# check's output lines that name the damage, most telling first.
_PROBLEM_WORDS = ("pack", "does not match", "damaged", "error", "fatal")
PROBLEM_CHARACTERS = 300


@dataclass(frozen=True)
class ResticSnapshot:
    """One snapshot as 'restic snapshots --json' lists it."""

    id: str
    short_id: str
    time: str
    tags: tuple[str, ...]
    paths: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class BackupSummary:
    """The summary 'restic backup --json' prints last."""

    snapshot_id: str
    data_added: int
    total_bytes_processed: int | None

    @property
    def short_id(self) -> str:
        """The id 'cloche backup list' shows (restic's short id)."""
        return self.snapshot_id[:8]


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


def backup_summary(output: str) -> BackupSummary:
    """The summary message of 'restic backup --json' (its status lines are skipped)."""
    for message in reversed(_json_lines(output)):
        if message.get("message_type") == "summary" and "snapshot_id" in message:
            processed = message.get("total_bytes_processed")
            return BackupSummary(
                snapshot_id=str(message["snapshot_id"]),
                data_added=int(message.get("data_added", 0)),
                total_bytes_processed=None if processed is None else int(processed),
            )
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


def matching_snapshot(snapshots: Iterable[ResticSnapshot], backup_id: str) -> ResticSnapshot | None:
    """The snapshot backup_id names (a prefix of its id, or its short id), or None."""
    for snapshot in snapshots:
        if snapshot.id.startswith(backup_id) or snapshot.short_id == backup_id:
            return snapshot
    return None


def backed_up_environments(snapshots: Iterable[ResticSnapshot]) -> list[tuple[str, str]]:
    """The (user, environment) pairs cloche's snapshots are of, sorted, each once."""
    return sorted(
        {(tags.user, tags.env) for snapshot in snapshots if (tags := parse_tags(snapshot.tags))}
    )


def backup_rows(
    repository: str, snapshots: Iterable[ResticSnapshot], records: Mapping[str, BackupRecord]
) -> list[BackupEntry]:
    """The rows 'cloche backup list' shows of one repository's cloche snapshots.

    records (by short id) add the figures restic printed at backup time; None where unknown.
    """
    rows = []
    for snapshot in snapshots:
        tags = parse_tags(snapshot.tags)
        if tags is None:
            continue
        record = records.get(snapshot.short_id)
        rows.append(
            BackupEntry(
                id=snapshot.short_id,
                repository=repository,
                environment=f"{tags.user}/{tags.env}",
                time=snapshot.time,
                snapshot=tags.snapshot,
                data_added=record.data_added if record else None,
                total_bytes=record.total_bytes if record else None,
            )
        )
    return rows


def check_problem(stderr: str, stdout: str) -> str:
    """The line of 'restic check' output that best says what is damaged.

    stderr's lines come first: stdout carries check's progress ('check all packs').
    """
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    for words in _PROBLEM_WORDS:
        for line in lines:
            if words in line.lower():
                return line[:PROBLEM_CHARACTERS]
    return lines[-1][:PROBLEM_CHARACTERS] if lines else "restic check failed"
