"""Use cases for environments: create (as a copy of the user's template), act, resize, exec, rm."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from cloche.core import routes
from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.core.firewall import converge_firewall, converge_quietly, egress_of
from cloche.model.addresses import allocate_address
from cloche.model.audit import JsonValue
from cloche.model.commands import PROFILE_PROCESSES, LimitChanges, NewEnvironment
from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid
from cloche.model.instances import BootFailure, ExecResult, InstanceState
from cloche.model.limits import Limits
from cloche.model.names import check_environment_name, check_user_name
from cloche.model.quota import Quota, Usage, check_fits
from cloche.model.records import EnvironmentRecord, Profile, UserRecord
from cloche.model.units import format_size
from cloche.render.account import OWNER_UID, account_script, authorized_keys
from cloche.render.image import image_alias
from cloche.render.instance import (
    instance_request,
    template_name,
    template_request,
)
from cloche.render.lxd import static_nic
from cloche.runtime.instances import LxdInstances

Progress = Callable[[str], None]
ACTIONS = {"start": "started", "stop": "stopped", "restart": "restarted"}


def quota_of(user: UserRecord) -> Quota:
    return Quota(
        max_envs=user.max_envs,
        cpu=user.cpu,
        memory_bytes=user.memory_bytes,
        disk_bytes=user.disk_bytes,
    )


def usage_of(env: EnvironmentRecord) -> Usage:
    return Usage(cpu=env.cpu, memory_bytes=env.memory_bytes, disk_bytes=env.disk_bytes)


def limits_of(env: EnvironmentRecord) -> Limits:
    return Limits(
        cpu=env.cpu,
        memory_bytes=env.memory_bytes,
        disk_bytes=env.disk_bytes,
        processes=env.processes,
    )


def checked_names(user: str, name: str) -> tuple[str, str]:
    return check_user_name(user), check_environment_name(name)


def describe(
    context: Context,
    env: EnvironmentRecord,
    live: bool = True,
    states: Mapping[str, InstanceState] | None = None,
) -> dict[str, Any]:
    """The environment as the API shows it (state and address from LXD when live)."""
    state, address = env.state_hint or "Unknown", env.address
    if live and env.status != "creating":
        if states is None:
            instances = context.user_instances(env.user)
            states = {env.name: instances.state(env.name)} if instances.find(env.name) else {}
        observed = states.get(env.name)
        if observed is None:
            state = "Missing"
        else:
            state, address = observed.status, observed.ipv4 or address
    return {
        "user": env.user,
        "name": env.name,
        "status": env.status,
        "state": state,
        "address": address,
        "image": env.image,
        "profile": env.profile,
        "limits": {
            "cpu": env.cpu,
            "memory": format_size(env.memory_bytes),
            "disk": format_size(env.disk_bytes),
            "processes": env.processes,
        },
        "host_keys": dict(env.host_keys or {}),
        "egress": egress_of(context, env.user, env.name),
        "created_at": env.created_at.isoformat(),
    }


def list_environments(context: Context, user: str | None) -> list[dict[str, Any]]:
    """Environments (of one user when given) with their live state."""
    if user is not None:
        context.database.get_user(check_user_name(user))
    records = context.database.list_environments(user)
    # One LXD request per user, not one per environment: listings stay fast with hundreds.
    states = {owner: context.user_instances(owner).states() for owner in {e.user for e in records}}
    return [describe(context, env, states=states[env.user]) for env in records]


def environment_info(context: Context, user: str, name: str) -> dict[str, Any]:
    """One environment with its live state and its published routes."""
    env = context.database.get_environment(*checked_names(user, name))
    routes = [record.spec for record in context.database.list_routes(env.user, env.name)]
    return {**describe(context, env), "routes": routes}


def install_keys(context: Context, user: str, name: str) -> None:
    """Write the owner's account, sudo rule and current keys inside a running environment."""
    keys = [key.public_key for key in context.database.list_keys(user)]
    result = context.user_instances(user).exec(
        name,
        ["sh", "-c", account_script(user)],
        stdin=authorized_keys(keys),
        timeout=60,
    )
    if not result.ok:
        raise Invalid(
            f"Setting up the account of {user} in {user}/{name} failed: "
            f"{result.stderr.decode(errors='replace').strip()[-300:]}; check the image."
        )


def read_host_keys(instances: LxdInstances, name: str) -> dict[str, str]:
    result = instances.exec(name, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], timeout=30)
    keys = {}
    for line in result.text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            keys[parts[0]] = f"{parts[0]} {parts[1]}"
    return keys


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
        check_new_environment(context, user_name, name, limits)
        image = command.image or image_alias(context.config.image.release)
        address = record_new_environment(context, user_name, name, image, command.profile, limits)
    details: dict[str, JsonValue] = {
        "profile": command.profile,
        "image": image,
        "limits": limits.describe(),
        "address": address,
    }

    def work(progress: Progress) -> None:
        with audited(context, actor, "created environment", target, details):
            try:
                _build(context, user_name, name, image, command.profile, limits, address, progress)
            except BaseException as error:
                progress("cleaning up")
                with contextlib.suppress(ClocheError):
                    context.user_instances(user_name).delete(name)
                context.database.delete_environment(user_name, name)
                if isinstance(error, BootFailure):
                    raise HostFailure(f"{error} {_console_tail(error.console_tail)}") from error
                raise

    return context.operations.submit("create environment", target, work)


def _console_tail(text: str, lines: int = 8) -> str:
    tail = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return f"Last console lines: {' | '.join(tail)}" if tail else "The console log is empty."


def check_new_environment(context: Context, user: str, name: str, limits: Limits) -> None:
    """Refuse a name the user already has, or limits that would take them over their quota."""
    owner = context.database.get_user(user)
    others = context.database.list_environments(user)
    if any(env.name == name for env in others):
        raise Conflict(
            f"Environment {user}/{name} already exists; choose another name or remove it first."
        )
    check_fits(
        user,
        quota_of(owner),
        [usage_of(env) for env in others],
        Usage(limits.cpu, limits.memory_bytes, limits.disk_bytes),
        new=True,
    )


def record_new_environment(
    context: Context,
    user: str,
    name: str,
    image: str,
    profile: Profile,
    limits: Limits,
) -> str:
    """Record the environment as 'creating' with the lowest free static address."""
    with context.locked("addresses"):
        used = [env.address for env in context.database.list_environments() if env.address]
        address = allocate_address(context.config.network.subnet, used)
        context.database.add_environment(
            user,
            name,
            image=image,
            profile=profile,
            cpu=limits.cpu,
            memory_bytes=limits.memory_bytes,
            disk_bytes=limits.disk_bytes,
            processes=limits.processes,
            status="creating",
            address=address,
        )
    return address


def _build(
    context: Context,
    user: str,
    name: str,
    image: str,
    profile: str,
    limits: Limits,
    address: str,
    progress: Progress,
) -> None:
    instances = context.user_instances(user)
    pool = context.config.storage.pool
    with context.locked(f"template:{user}:{image}"):
        progress("preparing the user's template (the first time shifts it to the user's ids)")
        instances.ensure_template(template_request(image, user, pool))
        progress("copying the template")
        request = instance_request(
            name,
            profile=profile,
            limits=limits,
            user=user,
            pool=pool,
            source_instance=template_name(image),
        )
        request["devices"]["eth0"] = static_nic(context.config.network.bridge, address)
        instances.create_from_template(request)
    start_new_environment(context, user, name, progress)


def start_new_environment(context: Context, user: str, name: str, progress: Progress) -> None:
    """Start a just-made environment and make it ready: firewall, boot, account, keys, jump."""
    instances = context.user_instances(user)
    # Before the start, so the new address is never in a stale tenant set (of a removed env).
    progress("applying the firewall")
    converge_firewall(context, "cloche")
    # A copy (restore as new) must not bring the original's proxy devices onto its host ports;
    # an import in place gets today's routes rather than those of the backup's time.
    routes.converge_devices(context, context.database.get_environment(user, name))
    progress("starting (its own machine-id and SSH host keys)")
    instances.start(name)
    progress("waiting for systemd")
    instances.wait_until_booted(name)
    progress("setting up the account")
    install_keys(context, user, name)
    state = instances.state(name)
    context.database.update_environment(
        user,
        name,
        status="ready",
        state_hint=state.status,
        host_keys=read_host_keys(instances, name),
    )
    progress("opening the jump account's forward")
    context.jump_accounts.converge(context.database, user)


def request_action(context: Context, actor: str, user: str, name: str, action: str) -> str:
    """Start, stop or restart an environment in the background."""
    target = f"{user}/{name}"
    if action not in ACTIONS:
        raise Invalid(f"{action!r} is not an action; use start, stop or restart.")
    past = ACTIONS[action]
    with audited(context, actor, f"{past} environment", target, only_failure=True):
        env = context.database.get_environment(*checked_names(user, name))

    def work(progress: Progress) -> None:
        with audited(context, actor, f"{past} environment", target):
            instances = context.user_instances(env.user)
            progress(f"{action}ing")
            if action in ("start", "restart"):
                if action == "restart":
                    instances.stop(env.name)
                instances.start(env.name)
                progress("waiting for systemd")
                instances.wait_until_booted(env.name)
            else:
                instances.stop(env.name)
            state = instances.state(env.name)
            context.database.update_environment(
                env.user, env.name, state_hint=state.status, address=state.ipv4 or env.address
            )

    return context.operations.submit(f"{action} environment", target, work)


def destroy(context: Context, user: str, name: str) -> None:
    """Delete the instance, then the record (so a crash leaves a record to repair, never junk)."""
    had_http_routes = routes.has_http_routes(context, user, name)
    context.database.update_environment(user, name, status="deleting")
    context.user_instances(user).delete(name)
    # Its routes go with the record; the firewall and Caddy then drop them too.
    context.database.delete_environment(user, name)
    context.jump_accounts.converge(context.database, user)
    converge_quietly(context, "cloche")
    routes.after_removal(context, "cloche", had_http_routes)


def request_remove(context: Context, actor: str, user: str, name: str) -> str:
    """Delete an environment in the background."""
    target = f"{user}/{name}"
    with audited(context, actor, "removed environment", target, only_failure=True):
        env = context.database.get_environment(*checked_names(user, name))

    def work(progress: Progress) -> None:
        with audited(context, actor, "removed environment", target):
            progress("deleting")
            destroy(context, env.user, env.name)

    return context.operations.submit("remove environment", target, work)


def resize(
    context: Context, actor: str, user: str, name: str, changes: LimitChanges
) -> dict[str, Any]:
    """Change an environment's limits within the user's quota (live where LXD allows)."""
    given: dict[str, JsonValue] = {
        key: value for key, value in asdict(changes).items() if value is not None
    }
    target = f"{user}/{name}"
    with audited(context, actor, "resized environment", target, given):
        user_name, env_name = checked_names(user, name)
        owner = context.database.get_user(user_name)
        env = context.database.get_environment(user_name, env_name)
        limits = Limits(
            cpu=changes.cpu or env.cpu,
            memory_bytes=changes.memory_bytes or env.memory_bytes,
            disk_bytes=changes.disk_bytes or env.disk_bytes,
            processes=changes.processes or env.processes,
        )
        others = [
            usage_of(other)
            for other in context.database.list_environments(user_name)
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
            updated = context.database.update_environment(
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
        env = context.database.get_environment(*checked_names(user, name))
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
