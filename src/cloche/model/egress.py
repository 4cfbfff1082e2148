"""Pure: an environment's egress policy as stored and typed ('open', 'none', 'allow:CIDR,...')."""

from __future__ import annotations

from typing import Literal, get_args

from cloche.model.errors import Invalid, QuotaExceeded
from cloche.model.firewall import EgressAllow, EgressPolicy

DEFAULT_EGRESS = "open"
ALLOW_PREFIX = "allow:"
# The widest egress a member may give their own environments (an admin sets it per user).
EgressCeiling = Literal["none", "allow", "open"]
EGRESS_CEILINGS: tuple[str, ...] = get_args(EgressCeiling)
_WIDTH = {"none": 0, "allow": 1, "open": 2}


def parse_egress(text: str) -> EgressPolicy:
    """'open', 'none' or 'allow:10.0.0.0/8,140.82.112.0/20' as a policy; Invalid otherwise."""
    value = text.strip()
    if value in ("open", "none"):
        return "open" if value == "open" else "none"
    if not value.startswith(ALLOW_PREFIX):
        raise Invalid(
            f"Egress policy {text!r} is unknown; use 'open', 'none' or "
            "'allow:CIDR,CIDR' such as allow:140.82.112.0/20,10.0.0.0/8."
        )
    cidrs = tuple(part.strip() for part in value[len(ALLOW_PREFIX) :].split(",") if part.strip())
    if not cidrs:
        raise Invalid(
            "An egress allow list needs at least one network, such as allow:140.82.112.0/20; "
            "use 'none' to block all egress."
        )
    return EgressAllow(cidrs)


def format_egress(policy: EgressPolicy) -> str:
    """The stored text of a policy (allow lists with their networks merged and sorted)."""
    if isinstance(policy, EgressAllow):
        return ALLOW_PREFIX + ",".join(policy.cidrs)
    return policy


def normalize_egress(text: str) -> str:
    """Check text and return its canonical stored form."""
    return format_egress(parse_egress(text))


def _kind(policy: EgressPolicy) -> EgressCeiling:
    return "allow" if isinstance(policy, EgressAllow) else policy


def check_within_ceiling(policy: EgressPolicy, ceiling: EgressCeiling, user: str) -> None:
    """Refuse a policy wider than the user's ceiling, in one sentence."""
    if _WIDTH[_kind(policy)] > _WIDTH[ceiling]:
        allowed = {"none": "'none'", "allow": "'none' or an allow list", "open": "any policy"}
        raise QuotaExceeded(
            f"Egress {format_egress(policy)!r} is wider than {user}'s ceiling {ceiling!r}; "
            f"use {allowed[ceiling]}, or ask an admin to raise it (cloche user set {user} "
            "--max-egress ...)."
        )


def default_egress_under(ceiling: EgressCeiling) -> str:
    """A new environment's egress: the default, narrowed to the owner's ceiling."""
    return DEFAULT_EGRESS if ceiling == "open" else "none"
