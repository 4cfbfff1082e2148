"""Pure: API tokens - their secrets, scopes, lifetimes, and what a scope lets a call do."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from cloche.model.errors import Forbidden, Invalid

Scope = Literal["read", "write", "exec", "admin"]
SCOPES: Final[tuple[str, ...]] = get_args(Scope)
DEFAULT_SCOPES: Final = frozenset({"read", "write", "exec"})
DEFAULT_LIFETIME: Final = timedelta(days=90)
LONGEST_LIFETIME: Final = timedelta(days=3650)
# What each scope grants beyond itself: write and exec can see what they change.
_IMPLIES: Final = {"write": {"read"}, "exec": {"read"}, "read": set(), "admin": set(SCOPES)}
_SECRET = re.compile(r"cloche_(?P<id>tk_[0-9a-f]{12})_(?P<key>[A-Za-z0-9_-]{43})")
_LIFETIME = re.compile(r"(?P<number>[1-9][0-9]{0,4})(?P<unit>[hdw])")
_UNIT_HOURS: Final = {"h": 1, "d": 24, "w": 24 * 7}


@dataclass(frozen=True, kw_only=True)
class TokenRecord:
    """One API token as stored: whose, what it may do, until when (never its secret)."""

    id: str
    user: str
    name: str
    scopes: frozenset[str]
    # The environment names it is limited to (None: every environment of its user).
    environments: frozenset[str] | None
    created: datetime
    expires: datetime
    last_used: datetime | None
    revoked: bool


def new_token_id() -> str:
    """A fresh token id (what the audit log and `token list` show)."""
    return f"tk_{secrets.token_hex(6)}"


def new_secret(token_id: str) -> str:
    """The secret of a new token: its id, then 256 random bits."""
    return f"cloche_{token_id}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    """What is stored of a secret (it carries 256 random bits, so one SHA-256 suffices)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id_of(secret: str) -> str | None:
    """The id a secret names, or None when it is not shaped like one of cloche's."""
    match = _SECRET.fullmatch(secret)
    return match["id"] if match else None


def parse_scopes(names: list[str] | None) -> frozenset[str]:
    """Scopes as asked for (default read, write, exec); Invalid names the unknown one."""
    if not names:
        return DEFAULT_SCOPES
    for name in names:
        if name not in SCOPES:
            raise Invalid(f"Scope {name[:40]!r} is unknown; use {', '.join(SCOPES)}.")
    return frozenset(names)


def parse_lifetime(text: str | None) -> timedelta:
    """'12h', '30d', '4w' as a lifetime (default 90 days, at most ten years)."""
    if text is None:
        return DEFAULT_LIFETIME
    match = _LIFETIME.fullmatch(text)
    if match is None:
        raise Invalid(
            f"Lifetime {text[:40]!r} is not valid; give a number and h, d or w, such as 30d."
        )
    lifetime = timedelta(hours=int(match["number"]) * _UNIT_HOURS[match["unit"]])
    if lifetime > LONGEST_LIFETIME:
        raise Invalid(f"Lifetime {text!r} is over ten years; give a shorter one, such as 90d.")
    return lifetime


def scopes_allow(scopes: frozenset[str], action: str) -> bool:
    """Whether a token with these scopes may do a call of this action."""
    granted = set(scopes)
    for scope in scopes:
        granted |= _IMPLIES.get(scope, set())
    return action in granted


def check_grantable(scopes: frozenset[str], creator_is_admin: bool) -> None:
    """A member's token never reaches above the member's own rights (no admin scope)."""
    if "admin" in scopes and not creator_is_admin:
        raise Forbidden(
            "Only an admin may create a token with the admin scope; drop --scope admin."
        )


def usable(token: TokenRecord, now: datetime) -> bool:
    """Whether the token still authenticates: not revoked, not expired."""
    return not token.revoked and now < token.expires
