"""Pure: an environment's egress policy as stored and typed ('open', 'none', 'allow:CIDR,...')."""

from __future__ import annotations

from cloche.model.errors import Invalid
from cloche.model.firewall import EgressAllow, EgressPolicy

DEFAULT_EGRESS = "open"
ALLOW_PREFIX = "allow:"


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
