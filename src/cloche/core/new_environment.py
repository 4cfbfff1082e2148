"""The one pipeline every new environment goes through, however it is born.

Create (a copy of the user's template), restore as new (a copy of a snapshot) and restore of a
backup as new (an LXD import) differ only in how the instance is made. Each one reserves the
name and an address (`reserve`: name taken, quota, then the record as 'creating'), then
`build` makes the instance through the birth's own function and starts it the same way:
firewall first, proxy devices, boot, the owner's account and keys, host keys recorded, the
jump account's forward opened. A failure anywhere removes the instance and the record, so
nothing is left half-made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloche.core import routes, ssh_access
from cloche.core.context import Context
from cloche.core.firewall import converge_firewall
from cloche.core.revert import Reverter
from cloche.model.addresses import allocate_address
from cloche.model.egress import default_egress_under
from cloche.model.errors import Conflict, HostFailure, Invalid
from cloche.model.instances import BootFailure
from cloche.model.limits import Limits
from cloche.model.quota import Quota, Usage, check_fits
from cloche.model.records import EnvironmentRecord, Profile, UserRecord
from cloche.model.text import output_tail
from cloche.render.account import account_script, authorized_keys
from cloche.render.ssh_config import is_host_key

Progress = Callable[[str], None]
# Makes the LXD instance of a reserved environment, given its address.
MakeInstance = Callable[[str, Progress], None]


@dataclass(frozen=True)
class Newborn:
    """What a new environment will be: whose, its name, image, profile and limits."""

    user: str
    name: str
    image: str
    profile: Profile
    limits: Limits

    @property
    def qualified_name(self) -> str:
        """user/name."""
        return f"{self.user}/{self.name}"


def quota_of(user: UserRecord) -> Quota:
    """A user's quota as the quota check takes it."""
    return Quota(
        max_envs=user.max_envs,
        cpu=user.cpu,
        memory_bytes=user.memory_bytes,
        disk_bytes=user.disk_bytes,
    )


def usage_of(env: EnvironmentRecord) -> Usage:
    """What an environment counts against its owner's quota."""
    return Usage(cpu=env.cpu, memory_bytes=env.memory_bytes, disk_bytes=env.disk_bytes)


def limits_of(env: EnvironmentRecord) -> Limits:
    """An environment's recorded limits."""
    return Limits(
        cpu=env.cpu,
        memory_bytes=env.memory_bytes,
        disk_bytes=env.disk_bytes,
        processes=env.processes,
    )


def check_new_environment(context: Context, user: str, name: str, limits: Limits) -> None:
    """Refuse a name the user already has, or limits that would take them over their quota."""
    owner = context.database.users.get(user)
    others = context.database.environments.list(user)
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


def reserve(context: Context, newborn: Newborn) -> str:
    """Check the name and quota, record the environment as 'creating'; return its address."""
    check_new_environment(context, newborn.user, newborn.name, newborn.limits)
    limits = newborn.limits
    with context.locked("addresses"):
        used = [env.address for env in context.database.environments.list() if env.address]
        address = allocate_address(context.config.network.subnet, used)
        context.database.environments.add(
            newborn.user,
            newborn.name,
            image=newborn.image,
            profile=newborn.profile,
            cpu=limits.cpu,
            memory_bytes=limits.memory_bytes,
            disk_bytes=limits.disk_bytes,
            processes=limits.processes,
            status="creating",
            address=address,
            egress=default_egress_under(context.database.users.get(newborn.user).max_egress),
        )
    return address


def build(
    context: Context, newborn: Newborn, address: str, make: MakeInstance, progress: Progress
) -> None:
    """Make a reserved environment's instance and start it; on failure remove both."""
    user, name = newborn.user, newborn.name
    instances = context.user_instances(user)
    with Reverter() as revert:
        revert.add("forget the record", lambda: context.database.environments.delete(user, name))
        revert.add("remove the instance", lambda: instances.delete(name))
        revert.add("say so", lambda: progress("cleaning up"))
        try:
            make(address, progress)
            start_new_environment(context, user, name, progress)
        except BootFailure as error:
            raise HostFailure(f"{error} {_console_tail(error.console_tail)}") from error
        revert.success()


def _console_tail(text: str) -> str:
    tail = output_tail(text, lines=8)
    return f"Last console lines: {tail}" if tail else "The console log is empty."


def start_new_environment(context: Context, user: str, name: str, progress: Progress) -> None:
    """Start a just-made environment and make it ready: firewall, boot, account, keys, jump."""
    instances = context.user_instances(user)
    # Before the start, so the new address is never in a stale tenant set (of a removed env).
    progress("applying the firewall")
    converge_firewall(context, "cloche")
    # A copy (restore as new) must not bring the original's proxy devices onto its host ports;
    # an import in place gets today's routes rather than those of the backup's time.
    routes.converge_devices(context, context.database.environments.get(user, name))
    progress("starting (its own machine-id and SSH host keys)")
    instances.start(name)
    progress("waiting for systemd")
    instances.wait_until_booted(name)
    progress("setting up the account")
    install_keys(context, user, name)
    state = instances.state(name)
    context.database.environments.update(
        user,
        name,
        status="ready",
        state_hint=state.status,
        host_keys=read_host_keys(context, user, name),
    )
    progress("opening the jump account's forward")
    ssh_access.converge_user(context, user)


# How long one environment may take to take its owner's keys (LXD's exec, then the script).
PUSH_SECONDS = 30.0


def keys_lock(user: str) -> str:
    """The lock that serialises pushes of one user's keys (an older list never lands last)."""
    return f"keys:{user}"


def install_keys(context: Context, user: str, name: str) -> None:
    """Write the owner's account, sudo rule and current keys inside a running environment."""
    with context.locked(keys_lock(user)):
        keys = [key.public_key for key in context.database.users.list_keys(user)]
        write_account(context, user, name, keys)


def write_account(context: Context, user: str, name: str, keys: list[str]) -> None:
    """Write the owner's account, sudo rule and these keys inside a running environment."""
    result = context.user_instances(user).exec(
        name,
        ["sh", "-c", account_script(user)],
        stdin=authorized_keys(keys),
        timeout=PUSH_SECONDS,
    )
    if not result.ok:
        raise Invalid(
            f"Setting up the account of {user} in {user}/{name} failed: "
            f"{output_tail(result.stderr.decode(errors='replace'), chars=300)}; check the image."
        )


def read_host_keys(context: Context, user: str, name: str) -> dict[str, str]:
    """The environment's SSH host keys, by key type, as its sshd presents them."""
    result = context.user_instances(user).exec(
        name, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], timeout=30
    )
    keys = {}
    for line in result.text.splitlines():
        parts = line.split()
        # The guest's files are not believed: only 'TYPE BASE64' reaches known_hosts.
        if len(parts) >= 2 and is_host_key(f"{parts[0]} {parts[1]}"):
            keys[parts[0]] = f"{parts[0]} {parts[1]}"
    return keys
