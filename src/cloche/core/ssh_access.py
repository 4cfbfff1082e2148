"""SSH access: the host sshd drop-in, jump accounts, and where each account may forward to."""

from __future__ import annotations

import glob
import socket
from pathlib import Path

from cloche.core.ports import StateStore
from cloche.host import sshd
from cloche.host.files import read_text_or_none, write_atomically
from cloche.model.config import ClocheConfig
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


def converge_sshd(config: ClocheConfig, state_dir: Path) -> list[str]:
    """Run the host sshd with cloche's drop-in (validated, swapped, reloaded); say what changed."""
    changes = []
    keys = [parse_public_key(line).line for line in config.ssh.emergency_keys]
    emergency = render_emergency_keys(keys)
    if read_text_or_none(Path(EMERGENCY_KEYS_PATH)) != emergency:
        write_atomically(Path(EMERGENCY_KEYS_PATH), emergency, mode=0o644)
        changes.append("wrote the emergency admin keys")
    (state_dir / "log").mkdir(parents=True, exist_ok=True)
    if sshd.ensure_sshd_running(log_file=state_dir / SSHD_LOG):
        changes.append("started sshd")
    if sshd.apply_sshd_dropin(render_sshd_dropin(SshdSettings())):
        changes.append(f"applied {sshd.DROPIN_PATH} and reloaded sshd")
    return changes


def converge_user(database: StateStore, user: str) -> None:
    """The user's jump account exists and may forward only to their ready environments' port 22."""
    sshd.ensure_jump_account(user)
    keys = [key.public_key for key in database.users.list_keys(user)]
    destinations = [
        f"{env.address}:22"
        for env in database.environments.list(user)
        if env.address and env.status == "ready"
    ]
    sshd.write_authorized_keys(user, render_authorized_keys(keys, destinations))


def remove_user(user: str) -> None:
    """Remove the user's jump account and its keys file."""
    sshd.remove_authorized_keys(user)
    sshd.remove_jump_account(user)


def converge_all_users(database: StateStore) -> None:
    """Every user's jump account and keys file, as at daemon start."""
    for user in database.users.list():
        converge_user(database, user.name)


def host_public_keys() -> list[str]:
    """The host sshd's own public keys ('type base64'), pinned in generated configs."""
    keys = []
    for path in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub")):
        parts = Path(path).read_text().split()
        if len(parts) >= 2:
            keys.append(f"{parts[0]} {parts[1]}")
    return keys


def ssh_config(
    database: StateStore,
    config: ClocheConfig,
    user: str,
    host: str | None,
    port: int | None,
    known_hosts_path: str,
) -> dict[str, str]:
    """The ssh_config text and the known_hosts text for one user's environments."""
    database.users.get(user)
    jump_host = host or config.ssh.host or socket.getfqdn()
    jump_port = port or config.ssh.port
    targets = [
        SshTarget(env.name, env.address, dict(env.host_keys or {}))
        for env in database.environments.list(user)
        if env.address and env.status == "ready"
    ]
    return {
        "config": render_ssh_config(user, jump_host, jump_port, known_hosts_path, targets),
        "known_hosts": render_known_hosts(user, jump_host, jump_port, host_public_keys(), targets),
    }
