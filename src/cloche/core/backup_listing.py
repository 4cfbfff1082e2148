"""Use cases that read what backups there are: restic's snapshots, with the catalog's figures."""

from __future__ import annotations

from cloche.core.backup_repositories import repositories, run_restic
from cloche.core.context import Context
from cloche.model.backups import BackupEntry, Repository, check_backup_id
from cloche.model.errors import NotFound
from cloche.model.names import check_environment_name, check_user_name
from cloche.render.restic import snapshots_arguments
from cloche.render.restic_output import (
    ResticSnapshot,
    backup_rows,
    matching_snapshot,
    parse_snapshots,
)


def snapshots(
    context: Context, repository: Repository, address: tuple[str, str] | None = None
) -> list[ResticSnapshot]:
    """cloche's snapshots in repository (of one environment when given), oldest first."""
    result = run_restic(context, repository, *snapshots_arguments(address), doing="list backups")
    return parse_snapshots(result.stdout)


def list_backups(
    context: Context,
    address: tuple[str, str] | None,
    repository_name: str | None,
    owner: str | None = None,
) -> list[BackupEntry]:
    """Backups (of one environment, or one user's, when given) in one repository or all of them,
    oldest first."""
    if address is not None:
        address = (check_user_name(address[0]), check_environment_name(address[1]))
    listed: list[BackupEntry] = []
    for repository in repositories(context, repository_name):
        records = context.backup_catalog.list(context.state_dir, repository.name)
        listed += backup_rows(
            repository.name,
            snapshots(context, repository, address),
            {record.id: record for record in records},
        )
    if owner is not None:
        listed = [item for item in listed if item.environment.partition("/")[0] == owner]
    return sorted(listed, key=lambda item: item.time)


def find_backup(
    context: Context, backup_id: str, repository_name: str | None
) -> tuple[Repository, ResticSnapshot]:
    """The repository and snapshot of a backup id (the catalog says where to look first)."""
    check_backup_id(backup_id)
    if repository_name is None:
        for record in context.backup_catalog.list(context.state_dir):
            if record.id.startswith(backup_id[:8]):
                repository_name = record.repository
                break
    candidates = repositories(context, repository_name)
    for repository in candidates:
        snapshot = matching_snapshot(snapshots(context, repository), backup_id)
        if snapshot is not None:
            return repository, snapshot
    names = ", ".join(each.name for each in candidates) or "any repository"
    raise NotFound(
        f"There is no backup {backup_id} in {names}; list them with 'cloche backup list'."
    )


def forget_stale_records(context: Context, repository: Repository) -> tuple[int, int]:
    """Drop the catalog's rows of backups restic no longer has; return (dropped, remaining)."""
    remaining = snapshots(context, repository)
    dropped = context.backup_catalog.forget(
        context.state_dir, repository.name, {snapshot.short_id for snapshot in remaining}
    )
    return dropped, len(remaining)
