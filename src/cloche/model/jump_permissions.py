"""Pure: whether a jump account's authorized_keys grants less than it did (a key or a forward gone).

sshd reads a key's permitopen options once, when the connection authenticates; a session (or a
ControlMaster) keeps them for as long as it lives. So whenever the file grants less than before,
the account's open sessions must end; when unsure, this says it shrank (ending sessions is safe,
clients reconnect with what they may still use).
"""

from __future__ import annotations

import re

# One option: a bare word or name="quoted value" (backslash escapes a quote inside).
_OPTION = re.compile(r'[A-Za-z0-9_-]+(="(?:[^"\\]|\\.)*")?')
_KEY_TYPE = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+$")
# What an unrestricted key line may open: anything sshd's own backstop allows.
ANYWHERE = "*"


def _split_options(text: str) -> tuple[list[str], str] | None:
    """The leading options of a key line and the rest, or None when they do not parse."""
    options: list[str] = []
    position = 0
    while True:
        match = _OPTION.match(text, position)
        if match is None:
            return None
        options.append(match.group(0))
        position = match.end()
        if text[position : position + 1] == ",":
            position += 1
            continue
        if text[position : position + 1] in (" ", "\t"):
            return options, text[position:].strip()
        return None


def key_grants(line: str) -> tuple[str, frozenset[str]] | None:
    """A key line's key ('type base64') and the forwards it allows; None when it is no key."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    if _KEY_TYPE.match(words[0]):
        options: list[str] = []
        rest = line.strip()
    else:
        split = _split_options(line.strip())
        if split is None:
            return None
        options, rest = split
    key_words = rest.split()
    if len(key_words) < 2 or not _KEY_TYPE.match(key_words[0]):
        return None
    return f"{key_words[0]} {key_words[1]}", _forwards(options)


def _forwards(options: list[str]) -> frozenset[str]:
    """Where a key line's options let it forward to (ANYWHERE when they do not limit it)."""
    names = {option.split("=", 1)[0].lower() for option in options}
    opens = frozenset(
        option.split("=", 1)[1].strip('"')
        for option in options
        if option.lower().startswith("permitopen=")
    )
    if opens:
        return opens
    if "no-port-forwarding" in names or ("restrict" in names and "port-forwarding" not in names):
        return frozenset()
    return frozenset({ANYWHERE})


def grants(text: str | None) -> dict[str, frozenset[str]]:
    """Every key of an authorized_keys text with the forwards it allows (unparsed lines: raw)."""
    found: dict[str, frozenset[str]] = {}
    for line in (text or "").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = key_grants(line)
        # A line this cannot read still grants something to whoever holds it: keep it by text.
        key, opens = parsed if parsed is not None else (line.strip(), frozenset({ANYWHERE}))
        found[key] = found.get(key, frozenset()) | opens
    return found


def permissions_shrank(old: str | None, new: str | None) -> bool:
    """Whether new grants less than old: a key is gone, or a key may open fewer forwards."""
    before, after = grants(old), grants(new)
    for key, opens in before.items():
        kept = after.get(key)
        if kept is None:
            return True
        if ANYWHERE not in kept and not opens <= kept:
            return True
    return False
