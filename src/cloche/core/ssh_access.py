"""SSH access: the host sshd drop-in, jump accounts, and where each account may forward to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloche.core.context import Context, HostEffects
from cloche.model.config import ClocheConfig
from cloche.model.firewall import check_port
from cloche.model.jump_permissions import permissions_shrank
from cloche.model.sshkeys import parse_public_key
from cloche.render.ssh_config import SshTarget, render_known_hosts, render_ssh_config
from cloche.render.sshd import (
    EMERGENCY_KEYS_PATH,
    SshdSettings,
    render_authorized_keys,
    render_emergency_keys,
    render_sshd_dropin,
)

SSHD_LOG = "log/sshd.log"


def converge_sshd(host: HostEffects, config: ClocheConfig, state_dir: Path) -> list[str]:
    """Run the host sshd with cloche's drop-in (validated, swapped, reloaded); say what changed."""
    changes = []
    keys = [parse_public_key(line).line for line in config.ssh.emergency_keys]
    emergency = render_emergency_keys(keys)
    if host.files.read(Path(EMERGENCY_KEYS_PATH)) != emergency:
        host.files.write(Path(EMERGENCY_KEYS_PATH), emergency, mode=0o644)
        changes.append("wrote the emergency admin keys")
    if host.sshd.ensure_running(log_file=state_dir / SSHD_LOG):
        changes.append("started sshd")
    if host.sshd.apply_dropin(render_sshd_dropin(SshdSettings())):
        changes.append(f"applied {host.sshd.dropin_path} and reloaded sshd")
    return changes


def jump_keys(context: Context, user: str) -> str:
    """The user's jump authorized_keys: each key may forward only to their ready envs' port 22."""
    database = context.database
    keys = [key.public_key for key in database.users.list_keys(user)]
    destinations = [
        f"{env.address}:22"
        for env in database.environments.list(user)
        if env.address and env.status == "ready"
    ]
    return render_authorized_keys(keys, destinations)


def converge_user(context: Context, user: str, actor: str = "cloche") -> None:
    """The user's jump account exists and may forward only to their ready environments.

    When the new keys file grants less than the old one (a key or an environment gone), the
    account's open sessions end: sshd fixed their permitopen list when they authenticated.
    """
    accounts = context.host.jump_accounts
    # One converge at a time per user, so a slower one never writes back keys just removed.
    with context.locked(f"jump:{user}"):
        accounts.ensure(user)
        before = accounts.read_keys(user)
        after = jump_keys(context, user)
        accounts.write_keys(user, after)
        if permissions_shrank(before, after):
            end_sessions(context, user, actor, "its access shrank")


def end_sessions(context: Context, user: str, actor: str, why: str) -> int:
    """End the user's open jump sessions (audited when there were any); return how many."""
    ended = context.host.jump_accounts.end_sessions(user)
    if ended:
        context.record(
            actor, "ended jump sessions of user", user, details={"sessions": ended, "why": why}
        )
    return ended


def remove_account(context: Context, user: str, actor: str) -> None:
    """No key first (new logins fail), then the open sessions end, then the account goes."""
    accounts = context.host.jump_accounts
    with context.locked(f"jump:{user}"):
        accounts.write_keys(user, render_authorized_keys([], []))
        end_sessions(context, user, actor, "the user was removed")
        accounts.remove(user)


def converge_all_users(context: Context) -> None:
    """Every user's jump account and keys file, as at daemon start."""
    for user in context.database.users.list():
        converge_user(context, user.name)


@dataclass(frozen=True)
class SshFiles:
    """The ssh_config text and the known_hosts text for one user's environments."""

    config: str
    known_hosts: str


def ssh_config(
    context: Context,
    user: str,
    host: str | None,
    port: int | None,
    known_hosts_path: str,
    identity_file: str | None = None,
) -> SshFiles:
    """The ssh_config text and the known_hosts text for one user's environments."""
    database, config = context.database, context.config
    database.users.get(user)
    jump_host = host or config.ssh.host or context.host.network.fqdn()
    jump_port = config.ssh.port if port is None else check_port("The SSH port", port)
    targets = [
        SshTarget(env.name, env.address, dict(env.host_keys or {}))
        for env in database.environments.list(user)
        if env.address and env.status == "ready"
    ]
    host_keys = context.host.sshd.host_public_keys()
    return SshFiles(
        config=render_ssh_config(
            user, jump_host, jump_port, known_hosts_path, targets, identity_file
        ),
        known_hosts=render_known_hosts(user, jump_host, jump_port, host_keys, targets),
    )
