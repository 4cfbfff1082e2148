"""The time machine's clock: every minute, plan and apply each running environment's snapshots.

A pass asks the pure planner (render/snapshot_plan.py) what to do for each ready, running
environment at this moment, with the host's policy (config `snapshots`) and the environment's
overrides, jittered by the environment's name, and applies it: take the one scheduled snapshot
it names, then delete what retention drops. The planner only looks at `now` and what exists, so
after downtime one pass takes exactly one snapshot (the current one): the scheduler never walks
the missed slots. Stopped environments do not change, so their time machine pauses (nothing is
taken or pruned) until they run again. Every snapshot taken or removed is one audit event of the
actor cloche-scheduler.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.core.periodic import run_every
from cloche.core.snapshots import effective_policy
from cloche.model.errors import ClocheError
from cloche.model.records import EnvironmentRecord
from cloche.model.snapshots import Snapshot, SnapshotPlan
from cloche.render.snapshot_plan import jitter_for, plan_snapshots

log = logging.getLogger(__name__)
ACTOR = "cloche-scheduler"
INTERVAL_SECONDS = 60.0


def schedule_environment(context: Context, env: EnvironmentRecord, now: datetime) -> SnapshotPlan:
    """Plan one environment's snapshots at now and apply the plan; return it."""
    target = env.qualified_name
    instances = context.user_instances(env.user)
    with context.locked(f"env:{target}"):
        existing = [
            Snapshot.observed(snapshot.name, snapshot.created_at)
            for snapshot in instances.list_snapshots(env.name)
        ]
        plan = plan_snapshots(
            now,
            existing,
            effective_policy(context.config.snapshots, env.snapshot_policy),
            jitter=jitter_for(target),
        )
        if plan.create is not None:
            with audited(context, ACTOR, "took snapshot", target, {"snapshot": plan.create}):
                instances.snapshot(env.name, plan.create)
        for name in plan.delete:
            with audited(context, ACTOR, "removed snapshot", target, {"snapshot": name}):
                instances.delete_snapshot(env.name, name)
    return plan


def schedule_once(context: Context, now: datetime | None = None) -> dict[str, SnapshotPlan]:
    """One pass over every ready, running environment; return the plan applied to each."""
    applied: dict[str, SnapshotPlan] = {}
    if not context.config.snapshots.enabled:
        return applied
    moment = now or context.host.clock.now()
    for env in context.database.environments.list():
        if env.status != "ready":
            continue
        try:
            info = context.user_instances(env.user).find(env.name)
            if info is None or not info.running:
                continue
            applied[env.qualified_name] = schedule_environment(context, env, moment)
        except ClocheError as error:
            # Audited where it failed; one environment's trouble never stops the others'.
            log.warning("snapshots of %s: %s", env.qualified_name, error)
    return applied


def start_snapshot_scheduler(
    context: Context, interval: float = INTERVAL_SECONDS
) -> threading.Thread:
    """Run a pass now and then every interval seconds, in a daemon thread."""
    return run_every("snapshot-scheduler", interval, lambda: schedule_once(context))
