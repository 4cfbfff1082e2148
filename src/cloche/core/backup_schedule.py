"""The daily backup round: every ready environment into the default repository, then retention."""

from __future__ import annotations

import logging
import threading
import time

from cloche.core.backup_repositories import repository as pick_repository
from cloche.core.backup_retention import apply_retention
from cloche.core.backup_run import back_up_each, backup_targets
from cloche.core.context import Context
from cloche.core.periodic import run_every
from cloche.model.backups import backup_round_due
from cloche.model.errors import ClocheError

log = logging.getLogger(__name__)

SCHEDULE_ACTOR = "schedule"
SCHEDULE_POLL_SECONDS = 600.0


def scheduled_run(context: Context) -> None:
    """One scheduled round: back up every ready environment, then apply retention."""
    repository = pick_repository(context, None)
    envs = backup_targets(context, None)
    for failure in back_up_each(context, SCHEDULE_ACTOR, repository, envs, scheduled=True):
        log.warning("scheduled backup failed: %s", failure)
    try:
        apply_retention(context, SCHEDULE_ACTOR, None)
    except ClocheError as error:
        log.warning("backup retention failed: %s", error)


def run_round_if_due(context: Context, now: float) -> bool:
    """Run scheduled_run when a day has passed since the last round; True if it ran."""
    if not backup_round_due(context.host.backup_files.last_round(context.state_dir), now):
        return False
    # Stamped first, so a failing round is retried the next day, not every poll.
    context.host.backup_files.stamp_round(context.state_dir, now)
    scheduled_run(context)
    return True


def start_backup_schedule(context: Context) -> threading.Thread | None:
    """Drop unfinished restores' files; run scheduled_run daily (None when off)."""
    context.host.backup_files.drop_restore_files(context.state_dir)  # a previous daemon's restores
    if context.config.backups.schedule == "off":
        return None
    if context.host.backup_files.last_round(context.state_dir) is None:
        # A new host: the first round comes a day from now.
        context.host.backup_files.stamp_round(context.state_dir, time.time())
    return run_every(
        "backup-schedule", SCHEDULE_POLL_SECONDS, lambda: run_round_if_due(context, time.time())
    )
