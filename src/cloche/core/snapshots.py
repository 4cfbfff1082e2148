"""The time machine's use cases: take, list and remove snapshots, restore in place or as new.

Manual snapshots are named by their label or `manual-<UTC time>`; the `auto-` prefix belongs to
the scheduler (core/snapshot_scheduler.py), whose snapshots the planner prunes. Each action is
one audit event; the restores are operations (the environment restarts, or a new one boots).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cloche.core import routes
from cloche.core.audited import audited, submit_audited
from cloche.core.context import Context
from cloche.core.environments import checked_names
from cloche.core.new_environment import (
    Newborn,
    build,
    install_keys,
    limits_of,
    read_host_keys,
    reserve,
)
from cloche.model.audit import JsonValue
from cloche.model.config import SnapshotsConfig
from cloche.model.errors import Conflict, Invalid
from cloche.model.instances import SnapshotInfo
from cloche.model.names import check_environment_name
from cloche.model.records import EnvironmentRecord
from cloche.model.snapshots import (
    POLICY_FIELDS,
    POLICY_MAX,
    SCHEDULED_PREFIX,
    RetentionPolicy,
    Snapshot,
    snapshot_kind,
)
from cloche.render.instance import instance_request
from cloche.render.lxd import static_nic

Progress = Callable[[str], None]
MANUAL_PREFIX = "manual-"
LABEL_MAX = 40
_LABEL = re.compile(r"[a-z0-9-]+")


def check_label(label: str) -> str:
    """A manual snapshot's label: [a-z0-9-], at most 40 characters, not starting with 'auto-'."""
    if not label or len(label) > LABEL_MAX or not _LABEL.fullmatch(label):
        raise Invalid(
            f"Snapshot label {label!r} is not allowed; use 1 to {LABEL_MAX} lowercase letters, "
            "digits and '-'."
        )
    if label.startswith(SCHEDULED_PREFIX):
        raise Invalid(
            f"Snapshot label {label!r} starts with {SCHEDULED_PREFIX!r}, which marks scheduled "
            "snapshots; pick another label."
        )
    return label


def manual_name(now: datetime) -> str:
    """The name of an unlabelled manual snapshot taken at now, e.g. manual-20261122T191502Z."""
    return f"{MANUAL_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def describe_snapshot(snapshot: SnapshotInfo) -> Snapshot:
    """A snapshot LXD lists, with its kind (manual or scheduled)."""
    return Snapshot(snapshot.name, snapshot.created_at, snapshot_kind(snapshot.name))


def effective_policy(
    host: SnapshotsConfig, overrides: Mapping[str, int] | None = None
) -> RetentionPolicy:
    """The host's retention counts with an environment's overrides applied."""
    counts = {field: getattr(host, field) for field in POLICY_FIELDS}
    counts.update({key: value for key, value in (overrides or {}).items() if key in counts})
    return RetentionPolicy(**counts)


def _ready(context: Context, user: str, name: str) -> EnvironmentRecord:
    env = context.database.environments.get(*checked_names(user, name))
    if env.status != "ready":
        raise Conflict(
            f"Environment {env.qualified_name} is {env.status}; wait until it is ready and retry."
        )
    return env


def take_snapshot(
    context: Context, actor: str, user: str, name: str, label: str | None = None
) -> Snapshot:
    """Take a manual snapshot now (named label, or manual-<UTC time>); never pruned."""
    snapshot = label if label is not None else manual_name(context.host.clock.now())
    target = f"{user}/{name}"
    with audited(context, actor, "took snapshot", target, {"snapshot": snapshot}):
        if label is not None:
            check_label(label)
        env = _ready(context, user, name)
        with context.locked(f"env:{env.qualified_name}"):
            taken = context.user_instances(env.user).snapshot(env.name, snapshot)
        return describe_snapshot(taken)


def list_snapshots(context: Context, user: str, name: str) -> list[Snapshot]:
    """An environment's snapshots, oldest first."""
    env = context.database.environments.get(*checked_names(user, name))
    return [
        describe_snapshot(snapshot)
        for snapshot in context.user_instances(env.user).list_snapshots(env.name)
    ]


def remove_snapshot(context: Context, actor: str, user: str, name: str, snapshot: str) -> None:
    """Delete one snapshot (manual or scheduled) of an environment."""
    target = f"{user}/{name}"
    with audited(context, actor, "removed snapshot", target, {"snapshot": snapshot}):
        env = context.database.environments.get(*checked_names(user, name))
        with context.locked(f"env:{env.qualified_name}"):
            context.user_instances(env.user).delete_snapshot(env.name, snapshot)


def request_restore(context: Context, actor: str, user: str, name: str, snapshot: str) -> str:
    """Put an environment back to a snapshot in place (it restarts) in the background."""
    target = f"{user}/{name}"
    details: dict[str, JsonValue] = {"snapshot": snapshot}
    with audited(context, actor, "restored environment", target, details, only_failure=True):
        env = _ready(context, user, name)
        context.user_instances(env.user).require_snapshot(env.name, snapshot)

    def work(progress: Progress) -> None:
        instances = context.user_instances(env.user)
        with context.locked(f"env:{target}"):
            progress(f"restoring {snapshot} (the environment restarts)")
            instances.restore_snapshot(env.name, snapshot)
            # The snapshot holds the limits of its time; the record holds today's.
            current = context.database.environments.get(env.user, env.name)
            instances.set_limits(env.name, limits_of(current))
            # ... and the proxy devices of its time: today's routes are in the database.
            routes.converge_devices(context, current)
            progress("starting")
            instances.start(env.name)
            progress("waiting for systemd")
            instances.wait_until_booted(env.name)
            progress("setting up the account (today's keys)")
            install_keys(context, env.user, env.name)
            state = instances.state(env.name)
            context.database.environments.update(
                env.user,
                env.name,
                state_hint=state.status,
                host_keys=read_host_keys(context, env.user, env.name),
            )

    return submit_audited(
        context, actor, "restored environment", target, work, details, kind="restore environment"
    )


def request_restore_as_new(
    context: Context, actor: str, user: str, name: str, snapshot: str, new_name: str
) -> str:
    """Make a new environment from a snapshot (new address, MAC, machine-id, host keys)."""
    target = f"{user}/{new_name}"
    details: dict[str, JsonValue] = {"source": f"{user}/{name}", "snapshot": snapshot}
    action = "restored environment as new"
    with audited(context, actor, action, target, details, only_failure=True):
        source = _ready(context, user, name)
        newborn = Newborn(
            source.user,
            check_environment_name(new_name),
            source.image,
            source.profile,
            limits_of(source),
        )
        context.user_instances(source.user).require_snapshot(source.name, snapshot)
        address = reserve(context, newborn)
        if source.snapshot_policy is not None:
            context.database.environments.update(
                source.user, new_name, snapshot_policy=source.snapshot_policy
            )
    details.update({"address": address, "limits": newborn.limits.describe()})

    def make(address: str, progress: Progress) -> None:
        _copy_snapshot(context, source, snapshot, newborn, address, progress)

    return submit_audited(
        context,
        actor,
        action,
        target,
        lambda progress: build(context, newborn, address, make, progress),
        details,
        kind="restore environment as new",
    )


def _copy_snapshot(
    context: Context,
    source: EnvironmentRecord,
    snapshot: str,
    newborn: Newborn,
    address: str,
    progress: Progress,
) -> None:
    request = instance_request(
        newborn.name,
        profile=newborn.profile,
        limits=newborn.limits,
        user=newborn.user,
        pool=context.config.storage.pool,
        source_instance=f"{source.name}/{snapshot}",
    )
    request["devices"]["eth0"] = static_nic(context.config.network.bridge, address)
    # The source's lock keeps the scheduler from pruning the snapshot while it is copied.
    with context.locked(f"env:{source.qualified_name}"):
        progress(f"copying {source.name}/{snapshot}")
        context.user_instances(source.user).create_from_snapshot(request)


@dataclass(frozen=True)
class PolicyView:
    """An environment's retention: its overrides (tier -> count) and the counts in effect."""

    environment: str
    scheduler_enabled: bool
    overrides: Mapping[str, int]
    effective: RetentionPolicy


def describe_policy(context: Context, env: EnvironmentRecord) -> PolicyView:
    """An environment's retention policy: its overrides and the counts in effect."""
    host = context.config.snapshots
    return PolicyView(
        environment=env.qualified_name,
        scheduler_enabled=host.enabled,
        overrides=dict(env.snapshot_policy or {}),
        effective=effective_policy(host, env.snapshot_policy),
    )


def snapshot_policy(context: Context, user: str, name: str) -> PolicyView:
    """An environment's retention policy."""
    return describe_policy(context, context.database.environments.get(*checked_names(user, name)))


def set_snapshot_policy(
    context: Context,
    actor: str,
    user: str,
    name: str,
    changes: Mapping[str, int | None],
    *,
    reset: bool = False,
) -> PolicyView:
    """Override tiers of an environment's retention (None drops an override; reset drops all)."""
    target = f"{user}/{name}"
    given: dict[str, JsonValue] = {key: value for key, value in changes.items()}
    if reset:
        given["reset"] = True
    with audited(context, actor, "set snapshot policy", target, given):
        env = context.database.environments.get(*checked_names(user, name))
        overrides = {} if reset else dict(env.snapshot_policy or {})
        for key, value in changes.items():
            if key not in POLICY_FIELDS:
                raise Invalid(
                    f"{key!r} is not a snapshot tier; use one of {', '.join(POLICY_FIELDS)}."
                )
            if value is None:
                overrides.pop(key, None)
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= POLICY_MAX
            ):
                raise Invalid(
                    f"The {key} snapshot count is {value!r}; give a whole number from 0 to "
                    f"{POLICY_MAX}."
                )
            overrides[key] = value
        updated = context.database.environments.update(
            env.user, env.name, snapshot_policy=overrides or None
        )
        return describe_policy(context, updated)
