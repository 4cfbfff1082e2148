"""Pure: the authentication lines of OpenSSH's log (LogLevel VERBOSE) as audit facts."""

from __future__ import annotations

import re
from dataclasses import dataclass

_AUTH = re.compile(
    r"(?P<verdict>Accepted|Failed) (?P<method>[a-z-]+) for (?:invalid user )?(?P<user>\S+) "
    r"from (?P<source>[0-9a-fA-F:.]+) port (?P<port>\d+) ssh2"
    r"(?:: (?P<key_type>[A-Z0-9-]+) (?P<fingerprint>SHA256:[A-Za-z0-9+/]+))?"
)


@dataclass(frozen=True)
class SshAuthentication:
    """One authentication attempt: who, with which key, from where, and the verdict."""

    user: str
    method: str
    source: str
    port: int
    accepted: bool
    key_type: str | None
    fingerprint: str | None


def parse_auth_line(line: str) -> SshAuthentication | None:
    """The authentication fact in one sshd log line, or None for any other line."""
    match = _AUTH.search(line)
    if match is None:
        return None
    return SshAuthentication(
        user=match["user"],
        method=match["method"],
        source=match["source"],
        port=int(match["port"]),
        accepted=match["verdict"] == "Accepted",
        key_type=match["key_type"],
        fingerprint=match["fingerprint"],
    )
