"""Use cases that keep repositories sound and small: check, retention, removing one backup."""

from __future__ import annotations

from dataclasses import dataclass

from cloche.core.audited import audited
from cloche.core.backup_listing import find_backup, forget_stale_records, snapshots
from cloche.core.backup_repositories import repository as pick_repository
from cloche.core.backup_repositories import run_restic
from cloche.core.backup_run import quiet
from cloche.core.context import Context
from cloche.core.operations import Progress
from cloche.model.audit import JsonValue
from cloche.model.backups import RESTIC_LONG_TIMEOUT_SECONDS, Repository, Retention
from cloche.model.errors import HostFailure
from cloche.render.restic import check_arguments, forget_arguments, parse_tags
from cloche.render.restic_output import backed_up_environments, check_problem


@dataclass(frozen=True)
class RepositoryCheck:
    """A repository that passed 'restic check' (a damaged one raises instead)."""

    repository: str
    read_data: bool
    ok: bool = True


@dataclass(frozen=True)
class RetentionResult:
    """What applying retention did to one repository: backups forgotten and kept."""

    repository: str
    forgotten: int
    kept: int


def check_repository(
    context: Context, actor: str, repository_name: str | None, *, read_data: bool
) -> RepositoryCheck:
    """'restic check' (reading every pack with read_data); raise naming the repo on damage."""
    repository = pick_repository(context, repository_name)
    details: dict[str, JsonValue] = {"read_data": read_data}
    with audited(context, actor, "checked backup repository", repository.name, details):
        result = run_restic(
            context,
            repository,
            *check_arguments(read_data=read_data),
            doing="check",
            timeout=RESTIC_LONG_TIMEOUT_SECONDS,
            check=False,
        )
        if not result.ok:
            problem = check_problem(result.stderr, result.stdout)
            if "wrong password" in problem.lower():
                # Opening it raises the one sentence about the password.
                run_restic(context, repository, "cat", "config", doing="open")
            raise HostFailure(
                f"Backup repository {repository.name!r} is damaged ({problem}); restore its "
                "files from another copy or make fresh backups into a new repository."
            )
        return RepositoryCheck(repository.name, read_data)


def _prune(context: Context, repository: Repository, progress: Progress, why: str) -> None:
    progress(f"pruning {repository.name}{why}")
    run_restic(context, repository, "prune", doing="prune", timeout=RESTIC_LONG_TIMEOUT_SECONDS)


def apply_retention(
    context: Context, actor: str, repository_name: str | None, progress: Progress = quiet
) -> RetentionResult:
    """Forget each environment's backups beyond the keep-* settings, then prune the repo."""
    repository = pick_repository(context, repository_name)
    settings = context.config.backups
    retention = Retention(settings.keep_daily, settings.keep_weekly, settings.keep_monthly)
    details: dict[str, JsonValue] = {
        "keep_daily": retention.daily,
        "keep_weekly": retention.weekly,
        "keep_monthly": retention.monthly,
    }
    with audited(context, actor, "applied backup retention", repository.name, details):
        for user, env in backed_up_environments(snapshots(context, repository)):
            progress(f"forgetting old backups of {user}/{env}")
            run_restic(
                context,
                repository,
                *forget_arguments(retention, user, env),
                doing=f"forget old backups of {user}/{env}",
            )
        _prune(context, repository, progress, "")
        dropped, kept = forget_stale_records(context, repository)
        details["forgotten"] = dropped
        return RetentionResult(repository.name, dropped, kept)


def request_retention(context: Context, actor: str, repository_name: str | None) -> str:
    """Apply retention in the background."""
    pick_repository(context, repository_name)

    def work(progress: Progress) -> None:
        apply_retention(context, actor, repository_name, progress)

    target = repository_name or context.config.backups.default_repository
    return context.operations.submit("apply backup retention", target, work)


def request_remove_backup(
    context: Context, actor: str, backup_id: str, repository_name: str | None
) -> str:
    """Forget one backup and prune its repository in the background (its data is freed)."""
    details: dict[str, JsonValue] = {"backup": backup_id[:64]}
    with audited(context, actor, "removed backup", backup_id[:64], details, only_failure=True):
        repository, snapshot = find_backup(context, backup_id, repository_name)
    tags = parse_tags(snapshot.tags)
    details.update(
        repository=repository.name,
        environment=f"{tags.user}/{tags.env}" if tags else None,
        time=snapshot.time,
    )

    def work(progress: Progress) -> None:
        with audited(context, actor, "removed backup", snapshot.short_id, details):
            progress(f"forgetting backup {snapshot.short_id} in {repository.name}")
            run_restic(
                context,
                repository,
                "forget",
                snapshot.id,
                doing=f"forget backup {snapshot.short_id}",
            )
            _prune(context, repository, progress, " (frees what no other backup shares)")
            forget_stale_records(context, repository)

    return context.operations.submit("remove backup", snapshot.short_id, work)
