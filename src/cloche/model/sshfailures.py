"""Pure: which connections to the host's sshd failed to sign in, and from where.

Each pattern is sshd's own message shape (OpenSSH 9.2, LogLevel VERBOSE), anchored at the start
of the message and at its end. A user name is the one part a client chooses and it may hold
spaces, so it is matched greedily between sshd's fixed words: the address is always the one in
the tail sshd writes after the name, never one a name like 'x from 6.6.6.6 port 1' carries.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from cloche.model.sshlog import sshd_message

# A link-local IPv6 client comes with its zone (fe80::1%eth0); the firewall bans the address.
_ADDRESS = r"(?P<address>[0-9A-Fa-f:.]+)(?:%[A-Za-z0-9_.-]{1,15})? port (?P<port>\d{1,5})"
_FROM = rf" from {_ADDRESS}"
# Only connections that named a user tried to sign in; scanners close before that.
_USER = r"(?:invalid|authenticating) user (?P<user>.*) "
_KEY = r"(?:: [A-Z0-9-]+ SHA256:[A-Za-z0-9+/]+)?"
_PREAUTH = r"(?: \[preauth\])?"

_ACCEPTED = re.compile(rf"^Accepted [a-z/-]+ for (?P<user>.*){_FROM} ssh2{_KEY}$")
_FAILURES = (
    # 'none' is the probe every client sends first: it is no attempt to sign in.
    re.compile(rf"^Failed (?!none )[a-z/-]+ for (?:invalid user )?(?P<user>.*){_FROM} ssh2{_KEY}$"),
    re.compile(rf"^Invalid user (?P<user>.*){_FROM}$"),
    re.compile(rf"^Connection (?:closed|reset) by {_USER}{_ADDRESS}{_PREAUTH}$"),
    re.compile(rf"^Disconnected from {_USER}{_ADDRESS}{_PREAUTH}$"),
    re.compile(
        rf"^error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*)"
        rf"{_FROM} ssh2{_PREAUTH}$"
    ),
    re.compile(rf"^Disconnecting {_USER}{_ADDRESS}: Too many authentication failures{_PREAUTH}$"),
)


@dataclass(frozen=True)
class SshOutcome:
    """How one connection's sign-in went: its client's address and port, and whether it failed."""

    address: str
    port: int
    failed: bool


def _address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket may report an IPv4 client as ::ffff:a.b.c.d; one client, one form.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _outcome(match: re.Match[str] | None, failed: bool) -> SshOutcome | None:
    if match is None:
        return None
    address = _address(match["address"])
    port = int(match["port"])
    if address is None or not 0 < port <= 65535:
        return None
    return SshOutcome(address, port, failed)


def parse_outcome(line: str) -> SshOutcome | None:
    """The sign-in outcome an sshd log line reports (failure or acceptance), or None."""
    message = sshd_message(line)
    if message is None:
        return None
    if message.startswith("Accepted "):
        return _outcome(_ACCEPTED.match(message), failed=False)
    for pattern in _FAILURES:
        match = pattern.match(message)
        if match is not None:
            return _outcome(match, failed=True)
    return None
