"""Use cases that make backups: one environment, or all of them, streamed into restic.

A backup is an LXD export (uncompressed, instance only) streamed into 'restic backup --stdin',
so successive backups of an environment share their unchanged chunks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cloche.core.audited import audited
from cloche.core.backup_repositories import repository as pick_repository
from cloche.core.context import Context
from cloche.core.operations import Progress
from cloche.model.audit import JsonValue
from cloche.model.backups import BackupRecord, Repository
from cloche.model.errors import ClocheError, Conflict, HostFailure
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.records import EnvironmentRecord
from cloche.render.restic import backup_arguments, snapshot_name
from cloche.render.restic_output import backup_summary


def quiet(message: str) -> None:
    """Progress sink that drops messages."""


class _Counter:
    """Counts the bytes that pass through an iterator of chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.total += len(chunk)
            yield chunk


@dataclass(frozen=True)
class BackupDone:
    """One backup made: its id and restic's figures, with how fast it went."""

    id: str
    repository: str
    environment: str
    snapshot: str
    data_added: int
    total_bytes: int
    seconds: float
    mb_per_second: float


def backup_environment(
    context: Context, repository: Repository, env: EnvironmentRecord, progress: Progress = quiet
) -> BackupDone:
    """Snapshot, export and stream one environment into restic; return restic's figures."""
    target = f"{env.user}/{env.name}"
    archives = context.user_exports(env.user)
    started = time.monotonic()
    snapshot = snapshot_name(datetime.now(UTC))
    with context.locked(f"env:{target}"):
        progress(f"{target}: taking snapshot {snapshot}")
        archives.create_snapshot(env.name, snapshot)
        try:
            progress(f"{target}: exporting and uploading to {repository.name}")
            with archives.export(env.name, snapshot) as chunks:
                counter = _Counter(chunks)
                result = context.host.restic.run_with_stdin(
                    context.state_dir,
                    repository,
                    backup_arguments(env.user, env.name, snapshot),
                    counter,
                    doing=f"back up {target}",
                )
        finally:
            progress(f"{target}: deleting snapshot {snapshot}")
            archives.delete_snapshot(env.name, snapshot)
    summary = backup_summary(result.stdout)
    seconds = time.monotonic() - started
    processed = summary.total_bytes_processed
    record = BackupRecord(
        repository=repository.name,
        id=summary.short_id,
        user=env.user,
        env=env.name,
        time=datetime.now(UTC).isoformat(),
        data_added=summary.data_added,
        total_bytes=counter.total if processed is None else processed,
        seconds=seconds,
    )
    context.backup_catalog.add(context.state_dir, record)
    return BackupDone(
        id=record.id,
        repository=repository.name,
        environment=target,
        snapshot=snapshot,
        data_added=record.data_added,
        total_bytes=record.total_bytes,
        seconds=round(seconds, 2),
        mb_per_second=round(record.total_bytes / 1e6 / max(seconds, 0.001), 1),
    )


def backup_targets(context: Context, address: tuple[str, str] | None) -> list[EnvironmentRecord]:
    """The environment at address (Conflict unless ready), or every ready one for None."""
    if address is not None:
        user, name = check_user_name(address[0]), check_environment_name(address[1])
        env = context.database.environments.get(user, name)
        if env.status != "ready":
            raise Conflict(f"Environment {user}/{name} is {env.status}; back it up once ready.")
        return [env]
    return [env for env in context.database.environments.list() if env.status == "ready"]


def back_up_audited(
    context: Context,
    actor: str,
    repository: Repository,
    env: EnvironmentRecord,
    progress: Progress = quiet,
    *,
    scheduled: bool = False,
) -> None:
    """backup_environment with one audit event (the backup's id and size, or the error)."""
    details: dict[str, JsonValue] = {"repository": repository.name}
    if scheduled:
        details["scheduled"] = True
    with audited(context, actor, "backed up environment", f"{env.user}/{env.name}", details):
        done = backup_environment(context, repository, env, progress)
        details.update({"id": done.id, "data_added": done.data_added})


def back_up_each(
    context: Context,
    actor: str,
    repository: Repository,
    envs: Iterable[EnvironmentRecord],
    progress: Progress = quiet,
    *,
    scheduled: bool = False,
) -> list[str]:
    """Back up each environment (one failing does not stop the rest); return the failures."""
    failures = []
    for env in envs:
        try:
            back_up_audited(context, actor, repository, env, progress, scheduled=scheduled)
        except ClocheError as error:
            failures.append(f"{env.user}/{env.name}: {error}")
    return failures


def request_backup(
    context: Context,
    actor: str,
    address: tuple[str, str] | None,
    repository_name: str | None,
) -> str:
    """Back up one environment (or all of them with address None) in the background."""
    label = f"{address[0]}/{address[1]}" if address else "all environments"
    with audited(context, actor, "backed up environment", label, only_failure=True):
        repository = pick_repository(context, repository_name)
        envs = backup_targets(context, address)

    def work(progress: Progress) -> None:
        if address is not None:
            back_up_audited(context, actor, repository, envs[0], progress)
            return
        failures = back_up_each(context, actor, repository, envs, progress)
        if failures:
            raise HostFailure(
                f"{len(failures)} of {len(envs)} backups failed ({failures[0]}); read the audit "
                "log for each and run 'cloche backup run' again."
            )

    return context.operations.submit("back up", label, work)
