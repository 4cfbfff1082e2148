"""Pure: the host sshd drop-in cloche owns, and the jump accounts' authorized_keys files.

The host's own OpenSSH sshd is the jump host: `ssh -J alice@host alice@10.120.0.5`. One drop-in
makes the whole host key-only and turns members of the jump group into forward-only accounts
(no shell, no command, no PTY). Where each account may forward to is not in sshd_config but in
its authorized_keys file (`restrict,port-forwarding,permitopen="ip:22"`), so creating or deleting
an environment rewrites one small file and never reloads sshd.

Break-glass access: an optional file of admin public keys that sshd also accepts for root
(next to root's own ~/.ssh/authorized_keys), so the host stays reachable with a key that cloche
manages even if root's home directory is damaged or emptied.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from cloche.model.errors import Invalid
from cloche.model.sshkeys import parse_public_key
from cloche.model.text import one_line

JUMP_GROUP = "cloche-users"
DROPIN_PATH = PurePosixPath("/etc/ssh/sshd_config.d/50-cloche.conf")
KEYS_DIR = PurePosixPath("/etc/cloche/ssh/authorized_keys")
EMERGENCY_KEYS_PATH = PurePosixPath("/etc/cloche/ssh/emergency_authorized_keys")

# Modern algorithms only, all supported by OpenSSH 9.2 (Debian 12) and by any client of the last
# years; Debian's strict-KEX fix (CVE-2023-48795, Terrapin) covers chacha20-poly1305 and -etm MACs.
KEX_ALGORITHMS = (
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
)
CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
MACS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
)

_GROUP = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# sshd expands %-tokens in AuthorizedKeysFile and splits it on whitespace.
_UNSAFE_IN_PATH = re.compile(r"[\s%\"'#]")
_PERMIT_OPEN = re.compile(r"(\*|[0-9.]+|[a-z0-9.-]+):(\*|[0-9]{1,5})")
_HEADER = "# Managed by cloche: it rewrites this file; edits here are lost.\n"


@dataclass(frozen=True)
class SshdSettings:
    """What the host sshd drop-in needs to know."""

    group: str = JUMP_GROUP
    keys_dir: PurePosixPath = KEYS_DIR
    # None leaves root with only its own ~/.ssh/authorized_keys.
    emergency_keys: PurePosixPath | None = EMERGENCY_KEYS_PATH
    # A server-side backstop under each key's permitopen list: sshd allows a forward only when
    # both allow it, so a hand-edited key line can still only reach port 22 of some address.
    forward_backstop: tuple[str, ...] = ("*:22",)
    # Real hosts keep the main sshd_config's Port; tests run a second sshd on a free port.
    port: int | None = None
    listen_address: str | None = None


def _check_path(path: PurePosixPath, what: str) -> str:
    text = one_line(str(path), f"The {what} path")
    if not path.is_absolute() or _UNSAFE_IN_PATH.search(text):
        raise Invalid(
            f"The {what} path {text!r} must be absolute and free of spaces, quotes, '#' and '%'; "
            "choose another path."
        )
    return text


def _check_settings(settings: SshdSettings) -> None:
    if not _GROUP.fullmatch(settings.group):
        raise Invalid(
            f"The jump group name {settings.group!r} is not a valid group name; use lowercase "
            "letters, digits, '_' or '-'."
        )
    _check_path(settings.keys_dir, "authorized keys directory")
    if settings.emergency_keys is not None:
        _check_path(settings.emergency_keys, "emergency keys file")
    if not settings.forward_backstop:
        raise Invalid(
            "The forward backstop is empty; give at least one 'host:port' such as '*:22'."
        )
    for entry in settings.forward_backstop:
        if not _PERMIT_OPEN.fullmatch(entry):
            raise Invalid(
                f"The forward backstop entry {entry!r} is not 'host:port' ('*' allowed for "
                "either); write it like '*:22'."
            )
    if settings.port is not None and not 1 <= settings.port <= 65535:
        raise Invalid(f"The sshd port {settings.port} is outside 1-65535; choose another port.")
    if settings.listen_address is not None:
        one_line(settings.listen_address, "The sshd listen address")
        try:
            ipaddress.ip_address(settings.listen_address)
        except ValueError:
            raise Invalid(
                f"The sshd listen address {settings.listen_address!r} is not an IP address; "
                "give one such as 127.0.0.1."
            ) from None


def render_sshd_dropin(settings: SshdSettings) -> str:
    """The drop-in /etc/ssh/sshd_config.d/50-cloche.conf for these settings."""
    _check_settings(settings)
    lines = [
        _HEADER.rstrip("\n"),
        "# sshd_config includes sshd_config.d/*.conf first and the first value of a setting wins,",
        "# so these apply over the main file's.",
    ]
    if settings.port is not None:
        lines.append(f"Port {settings.port}")
    if settings.listen_address is not None:
        lines.append(f"ListenAddress {settings.listen_address}")
    lines += [
        "",
        "# Keys only: no passwords anywhere on this host.",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "PermitRootLogin prohibit-password",
        "",
        f"KexAlgorithms {','.join(KEX_ALGORITHMS)}",
        f"Ciphers {','.join(CIPHERS)}",
        f"MACs {','.join(MACS)}",
        "LoginGraceTime 30",
        "MaxAuthTries 4",
        "MaxStartups 10:30:100",
        "# Drop dead clients (and their tunnels) after about three minutes.",
        "ClientAliveInterval 60",
        "ClientAliveCountMax 3",
        "# VERBOSE logs the fingerprint of each accepted and refused key; cloche audits them.",
        "LogLevel VERBOSE",
    ]
    if settings.emergency_keys is not None:
        lines += [
            "",
            "# Break-glass: root also accepts the admin keys cloche manages.",
            "Match User root",
            "    AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2 "
            f"{settings.emergency_keys}",
        ]
    lines += [
        "",
        "# Jump accounts: forward only (ssh -J, -W, -L); no shell, no command, no PTY.",
        "# Each key's permitopen list in its authorized_keys file says where it may forward to.",
        f"Match Group {settings.group}",
        f"    AuthorizedKeysFile {settings.keys_dir}/%u",
        "    PermitTTY no",
        "    X11Forwarding no",
        "    AllowAgentForwarding no",
        "    PermitTunnel no",
        "    AllowStreamLocalForwarding no",
        "    GatewayPorts no",
        "    PermitListen none",
        "    AllowTcpForwarding local",
        f"    PermitOpen {' '.join(settings.forward_backstop)}",
        "    ForceCommand /usr/sbin/nologin",
        "    PermitUserRC no",
    ]
    return "\n".join(lines) + "\n"


def _check_destination(destination: str) -> str:
    host, _, port = destination.rpartition(":")
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is None or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise Invalid(
            f"The forward destination {destination!r} is not an IPv4 address and port; "
            "write it like '10.120.0.5:22'."
        )
    return f"{address}:{int(port)}"


def _key_line(line: str) -> str:
    if "\n" in line.strip() or "\r" in line:
        raise Invalid("An SSH public key spans several lines; give one key per line.")
    return parse_public_key(line).line


def render_authorized_keys(key_lines: Sequence[str], destinations: Sequence[str]) -> str:
    """A jump account's authorized_keys: each key may forward only to destinations ('ip:port')."""
    checked = list(dict.fromkeys(_check_destination(item) for item in destinations))
    options = ",".join(["restrict", *(["port-forwarding"] if checked else [])])
    options += "".join(f',permitopen="{item}"' for item in checked)
    keys = dict.fromkeys(_key_line(line) for line in key_lines)
    return _HEADER + "".join(f"{options} {key}\n" for key in keys)


def render_emergency_keys(lines: Sequence[str]) -> str:
    """The break-glass file of admin public keys sshd accepts for root."""
    keys = dict.fromkeys(_key_line(line) for line in lines)
    return _HEADER + "".join(f"{key}\n" for key in keys)
