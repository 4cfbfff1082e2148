"""Pure: the ssh_config blocks and known_hosts lines that pin every host key (no TOFU)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cloche.model.errors import Invalid
from cloche.model.firewall import check_port
from cloche.model.names import check_environment_name, check_host_name, check_user_name
from cloche.model.text import one_line

# A known_hosts key: its type, one space, its base64 (a guest's key with more is not believed).
_HOST_KEY = re.compile(r"[a-z0-9@.-]{1,64} [A-Za-z0-9+/]+={0,2}")


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


def _check_target(target: SshTarget) -> None:
    check_environment_name(target.name)
    try:
        ipaddress.IPv4Address(target.address)
    except ValueError:
        raise Invalid(
            f"The address {target.address[:60]!r} of {target.name} is not an IPv4 address; "
            "run 'cloche host reconcile'."
        ) from None
    _check_host_keys(target.host_keys.values(), f"The host keys of {target.name}")


def is_host_key(text: str) -> bool:
    """True when text is 'TYPE BASE64', the only host key line known_hosts is given."""
    return _HOST_KEY.fullmatch(text) is not None


def _check_host_keys(keys: Iterable[str], what: str) -> None:
    for key in keys:
        if not is_host_key(one_line(key, what)):
            raise Invalid(
                f"{what} include {key[:60]!r}, which is not 'TYPE BASE64'; read them again."
            )


def _check_jump(user: str, jump_host: str, jump_port: int) -> None:
    check_user_name(user)
    check_host_name(jump_host, "The SSH host")
    check_port("The SSH port", jump_port)


def _config_path(path: str, what: str = "The known_hosts path") -> str:
    """path as an ssh_config argument: absolute, one line, quoted when it holds a space."""
    one_line(path, what)
    if not path.startswith(("/", "~/")) or '"' in path or "%" in path:
        raise Invalid(
            f"{what} {path[:80]!r} must be absolute and free of '\"' and '%'; choose another path."
        )
    return f'"{path}"' if any(char in path for char in " #") else path


def render_known_hosts(
    user: str,
    jump_host: str,
    jump_port: int,
    jump_host_keys: Sequence[str],
    targets: Sequence[SshTarget],
) -> str:
    """known_hosts lines for the jump host and every environment, under stable aliases."""
    _check_jump(user, jump_host, jump_port)
    _check_host_keys(jump_host_keys, "The host's own SSH host keys")
    for target in targets:
        _check_target(target)
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
    identity_file: str | None = None,
) -> str:
    """ssh_config: the jump account, then one Host block per environment through it; every value
    checked, so none can start a directive of its own.

    identity_file is named in every block: `ssh -i` does not reach a ProxyJump hop.
    """
    _check_jump(user, jump_host, jump_port)
    for target in targets:
        _check_target(target)
    known_hosts_path = _config_path(known_hosts_path)
    identity = (
        ""
        if identity_file is None
        else f"    IdentityFile {_config_path(identity_file, 'The identity file path')}\n"
        "    IdentitiesOnly yes\n"
    )
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
        f"{identity}"
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
            f"{identity}"
        )
    return "\n".join(blocks)
