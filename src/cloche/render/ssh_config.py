"""Pure: the ssh_config blocks and known_hosts lines that pin every host key (no TOFU)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SshTarget:
    """One environment as the generated config reaches it."""

    name: str
    address: str
    host_keys: Mapping[str, str]


def jump_alias(user: str) -> str:
    """The ssh_config Host alias of a user's jump account."""
    return f"cloche-jump-{user}"


def key_alias(user: str, environment: str) -> str:
    """The HostKeyAlias an environment's pinned keys are filed under."""
    return f"cloche-{user}-{environment}"


def render_known_hosts(
    user: str,
    jump_host: str,
    jump_port: int,
    jump_host_keys: Sequence[str],
    targets: Sequence[SshTarget],
) -> str:
    """known_hosts lines for the jump host and every environment, under stable aliases."""
    jump_name = jump_host if jump_port == 22 else f"[{jump_host}]:{jump_port}"
    lines = [f"{jump_name} {key}" for key in sorted(jump_host_keys)]
    for target in sorted(targets, key=lambda item: item.name):
        lines += [
            f"{key_alias(user, target.name)} {key}" for key in sorted(target.host_keys.values())
        ]
    return "".join(f"{line}\n" for line in lines)


def render_ssh_config(
    user: str,
    jump_host: str,
    jump_port: int,
    known_hosts_path: str,
    targets: Sequence[SshTarget],
) -> str:
    """ssh_config: the jump account, then one Host block per environment through it."""
    blocks = [
        f"# cloche: environments of {user}; host keys pinned in {known_hosts_path}\n"
        f"Host {jump_alias(user)}\n"
        f"    HostName {jump_host}\n"
        f"    Port {jump_port}\n"
        f"    User {user}\n"
        f"    UserKnownHostsFile {known_hosts_path}\n"
        f"    StrictHostKeyChecking yes\n"
        f"    RequestTTY no\n"
        f"    ForwardAgent no\n"
    ]
    for target in sorted(targets, key=lambda item: item.name):
        blocks.append(
            f"Host {target.name}\n"
            f"    HostName {target.address}\n"
            f"    User {user}\n"
            f"    ProxyJump {jump_alias(user)}\n"
            f"    HostKeyAlias {key_alias(user, target.name)}\n"
            f"    UserKnownHostsFile {known_hosts_path}\n"
            f"    StrictHostKeyChecking yes\n"
            f"    CheckHostIP no\n"
        )
    return "\n".join(blocks)
