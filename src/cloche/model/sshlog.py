"""Pure: the authentication messages of OpenSSH's log (LogLevel VERBOSE) as audit facts.

Only sshd's own formats count, matched whole from the start of sshd's message: a hostile user
name ends up inside sshd's messages, so a match anywhere in a line would believe it. A fact
also needs the key's fingerprint after "ssh2: ", which no user name can carry: sshd cuts the
name at its first ':' (the BSD auth style) before it logs it, so a line a name forged through
a newline never has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# sshd -E ends every message with "\r\n" and escapes (\ooo) every byte that is not printable
# ASCII except tab, space, \a, \b, \r and \n; journald's copy (syslog) escapes those too.
_NOT_FROM_SSHD = re.compile(r"[^\t\x07\x08\r\x20-\x7e]")

_AUTH = re.compile(
    r"(?P<verdict>Accepted|Failed) (?P<method>publickey) for (?P<invalid>invalid user )?"
    r"(?P<user>\S+) from (?P<source>[0-9a-fA-F:.]+) port (?P<port>[0-9]{1,5}) ssh2: "
    r"(?P<key_type>[A-Z0-9-]+) (?P<fingerprint>SHA256:[A-Za-z0-9+/]{43})"
)


@dataclass(frozen=True)
class SshAuthentication:
    """One authentication attempt: who, with which key, from where, and the verdict."""

    user: str
    method: str
    source: str
    port: int
    accepted: bool
    key_type: str
    fingerprint: str


def frame_message(packet: bytes) -> bytes:
    """One message sshd wrote (one write, with its "\\r\\n") as one log line of its own."""
    # sshd -e leaves \n and \r of client-sent text (a disconnect reason, a user name) as they
    # are; escaped, they can no longer end the line, so nothing a client sends starts one.
    text = packet.removesuffix(b"\r\n").replace(b"\\", b"\\\\")
    return text.replace(b"\r", b"\\r").replace(b"\n", b"\\n") + b"\n"


def sshd_message(line: str) -> str | None:
    """sshd's message in one line of its log (the relay's, -E's or `journalctl -o cat`), or None."""
    # None of them has a prefix (no time, no "sshd[pid]: "); only -E leaves its "\r".
    message = line.removesuffix("\r")
    if _NOT_FROM_SSHD.search(message):
        return None  # sshd would have escaped that character: the line is not its message
    return message


def parse_auth_line(line: str) -> SshAuthentication | None:
    """The publickey authentication fact in one sshd log line, or None for any other line."""
    message = sshd_message(line)
    match = _AUTH.fullmatch(message) if message is not None else None
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
