"""Use cases for environments: create (as a copy of the user's template), act, resize, exec, rm."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from cloche.core import routes, ssh_access
from cloche.core.audited import audited, submit_audited
from cloche.core.context import Context
from cloche.core.firewall import converge_quietly
from cloche.core.new_environment import (
    Newborn,
    build,
    install_keys,
    quota_of,
    reserve,
    usage_of,
)
from cloche.model.audit import JsonValue
from cloche.model.commands import PROFILE_PROCESSES, LimitChanges, NewEnvironment
from cloche.model.errors import Invalid
from cloche.model.instances import ExecResult, InstanceState
from cloche.model.limits import Limits
from cloche.model.names import check_environment_name, check_image_alias, check_user_name
from cloche.model.quota import Usage, check_fits
from cloche.model.records import EnvironmentRecord
from cloche.render.account import OWNER_UID
from cloche.render.image import image_alias
from cloche.render.instance import (
    instance_request,
    template_name,
    template_request,
)
from cloche.render.lxd import static_nic

Progress = Callable[[str], None]
ACTIONS = {"start": "started", "stop": "stopped", "restart": "restarted"}


def checked_names(user: str, name: str) -> tuple[str, str]:
    return check_user_name(user), check_environment_name(name)


@dataclass(frozen=True)
class EnvironmentView:
    """An environment's record with its state and address as LXD reports them."""

    record: EnvironmentRecord
    # LXD's status ('Running', ...), 'Missing' when LXD lacks it, else the last one seen.
    state: str
    address: str | None


@dataclass(frozen=True)
class EnvironmentDetail(EnvironmentView):
    """One environment with the specs of its published routes."""

    routes: tuple[str, ...]


def describe(
    context: Context,
    env: EnvironmentRecord,
    live: bool = True,
    states: Mapping[str, InstanceState] | None = None,
) -> EnvironmentView:
    """The environment with its state (from LXD when live) and the address cloche assigned.

    The address is always the record's: what the guest reports is observed (see
    reconcile.check_addresses), never believed.
    """
    state = env.state_hint or "Unknown"
    if live and env.status != "creating":
        if states is None:
            instances = context.user_instances(env.user)
            states = {env.name: instances.state(env.name)} if instances.find(env.name) else {}
        observed = states.get(env.name)
        state = "Missing" if observed is None else observed.status
    return EnvironmentView(env, state, env.address)


def list_environments(context: Context, user: str | None) -> list[EnvironmentView]:
    """Environments (of one user when given) with their live state."""
    if user is not None:
        context.database.users.get(check_user_name(user))
    records = context.database.environments.list(user)
    # One LXD request per user, not one per environment: listings stay fast with hundreds.
    states = {owner: context.user_instances(owner).states() for owner in {e.user for e in records}}
    return [describe(context, env, states=states[env.user]) for env in records]


def environment_info(context: Context, user: str, name: str) -> EnvironmentDetail:
    """One environment with its live state and its published routes."""
    env = context.database.environments.get(*checked_names(user, name))
    view = describe(context, env)
    routes = tuple(record.spec for record in context.database.routes.list(env.user, env.name))
    return EnvironmentDetail(view.record, view.state, view.address, routes)


def request_create(context: Context, actor: str, command: NewEnvironment) -> str:
    """Check and record a new environment now; build it in the background; return the op id."""
    target = f"{command.user}/{command.name}"
    with audited(context, actor, "created environment", target, only_failure=True):
        user_name, name = checked_names(command.user, command.name)
        limits = Limits(
            cpu=command.cpu,
            memory_bytes=command.memory_bytes,
            disk_bytes=command.disk_bytes,
            processes=command.processes or PROFILE_PROCESSES[command.profile],
        )
        image = check_image_alias(command.image or image_alias(context.config.image.release))
        newborn = Newborn(user_name, name, image, command.profile, limits)
        address = reserve(context, newborn)
    details: dict[str, JsonValue] = {
        "profile": command.profile,
        "image": image,
        "limits": limits.describe(),
        "address": address,
    }

    def make(address: str, progress: Progress) -> None:
        _copy_template(context, newborn, address, progress)

    return submit_audited(
        context,
        actor,
        "created environment",
        target,
        lambda progress: build(context, newborn, address, make, progress),
        details,
        kind="create environment",
    )


def _copy_template(context: Context, newborn: Newborn, address: str, progress: Progress) -> None:
    user, image = newborn.user, newborn.image
    instances = context.user_instances(user)
    pool = context.config.storage.pool
    with context.locked(f"template:{user}:{image}"):
        progress("preparing the user's template (the first time shifts it to the user's ids)")
        instances.ensure_template(template_request(image, user, pool))
        progress("copying the template")
        request = instance_request(
            newborn.name,
            profile=newborn.profile,
            limits=newborn.limits,
            user=user,
            pool=pool,
            source_instance=template_name(image),
        )
        request["devices"]["eth0"] = static_nic(context.config.network.bridge, address)
        instances.create_from_template(request)


def request_action(context: Context, actor: str, user: str, name: str, action: str) -> str:
    """Start, stop or restart an environment in the background."""
    target = f"{user}/{name}"
    if action not in ACTIONS:
        raise Invalid(f"{action!r} is not an action; use start, stop or restart.")
    past = ACTIONS[action]
    with audited(context, actor, f"{past} environment", target, only_failure=True):
        env = context.database.environments.get(*checked_names(user, name))

    def work(progress: Progress) -> None:
        instances = context.user_instances(env.user)
        progress(f"{action}ing")
        if action in ("start", "restart"):
            if action == "restart":
                instances.stop(env.name)
            # Its NIC's anti-spoofing and its routes' devices are in place before it runs.
            routes.converge_devices(context, env)
            instances.start(env.name)
            progress("waiting for systemd")
            instances.wait_until_booted(env.name)
            # Keys changed while it was stopped reach it now.
            progress("setting up the account (today's keys)")
            install_keys(context, env.user, env.name)
        else:
            instances.stop(env.name)
        state = instances.state(env.name)
        context.database.environments.update(env.user, env.name, state_hint=state.status)

    return submit_audited(
        context, actor, f"{past} environment", target, work, kind=f"{action} environment"
    )


def destroy(context: Context, user: str, name: str) -> None:
    """Delete the instance, then the record (so a crash leaves a record to repair, never junk)."""
    had_http_routes = routes.has_http_routes(context, user, name)
    env = context.database.environments.update(user, name, status="deleting")
    context.user_instances(user).delete(name)
    if env.address:
        # Before the address is free for the next environment: no flow of this one's outlives it.
        context.host.firewall.forget_connections(env.address)
    # Its routes go with the record; the firewall and Caddy then drop them too.
    context.database.environments.delete(user, name)
    ssh_access.converge_user(context, user)
    converge_quietly(context, "cloche")
    routes.after_removal(context, "cloche", had_http_routes)


def request_remove(context: Context, actor: str, user: str, name: str) -> str:
    """Delete an environment in the background."""
    target = f"{user}/{name}"
    with audited(context, actor, "removed environment", target, only_failure=True):
        env = context.database.environments.get(*checked_names(user, name))

    def work(progress: Progress) -> None:
        progress("deleting")
        destroy(context, env.user, env.name)

    return submit_audited(
        context, actor, "removed environment", target, work, kind="remove environment"
    )


def resize(
    context: Context, actor: str, user: str, name: str, changes: LimitChanges
) -> EnvironmentView:
    """Change an environment's limits within the user's quota (live where LXD allows)."""
    given: dict[str, JsonValue] = {
        key: value for key, value in asdict(changes).items() if value is not None
    }
    target = f"{user}/{name}"
    with audited(context, actor, "resized environment", target, given):
        user_name, env_name = checked_names(user, name)
        owner = context.database.users.get(user_name)
        env = context.database.environments.get(user_name, env_name)
        limits = Limits(
            cpu=changes.cpu or env.cpu,
            memory_bytes=changes.memory_bytes or env.memory_bytes,
            disk_bytes=changes.disk_bytes or env.disk_bytes,
            processes=changes.processes or env.processes,
        )
        others = [
            usage_of(other)
            for other in context.database.environments.list(user_name)
            if other.name != env_name
        ]
        check_fits(
            user_name,
            quota_of(owner),
            others,
            Usage(limits.cpu, limits.memory_bytes, limits.disk_bytes),
            new=False,
        )
        with context.locked(f"env:{target}"):
            context.user_instances(user_name).set_limits(env_name, limits)
            updated = context.database.environments.update(
                user_name,
                env_name,
                cpu=limits.cpu,
                memory_bytes=limits.memory_bytes,
                disk_bytes=limits.disk_bytes,
                processes=limits.processes,
            )
        return describe(context, updated)


def execute(
    context: Context,
    actor: str,
    user: str,
    name: str,
    command: Sequence[str],
    *,
    stdin: bytes,
    as_root: bool,
) -> ExecResult:
    """Run a command inside an environment as its owner (or root) and return its result."""
    target = f"{user}/{name}"
    details: dict[str, JsonValue] = {"command": shlex.join(command)[:500], "root": as_root}
    with audited(context, actor, "ran command in environment", target, details):
        env = context.database.environments.get(*checked_names(user, name))
        if as_root:
            return context.user_instances(env.user).exec(env.name, command, stdin=stdin)
        home = f"/home/{env.user}"
        return context.user_instances(env.user).exec(
            env.name,
            command,
            stdin=stdin,
            user=OWNER_UID,
            group=OWNER_UID,
            cwd=home,
            environment={
                "HOME": home,
                "USER": env.user,
                "LOGNAME": env.user,
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            },
        )
