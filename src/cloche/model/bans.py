"""Pure: which addresses to ban for failed SSH sign-ins, and which bans have run out.

A failure is one connection that did not sign in (however many keys or passwords it tried; one
that ends up accepted is forgiven), so a user whose agent offers a few wrong keys first is not
counted for each. Loopback, the environments' bridge and the configured ranges are never
banned: an environment's address is reused by another tenant, and the host must reach itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloche.model.errors import Invalid

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

_DURATION = re.compile(r"^(?P<number>[0-9]{1,6})(?P<unit>[smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """The length of a duration such as '30s', '10m', '1h' or '7d'; Invalid otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match["number"]) == 0:
        raise Invalid(
            f"{text!r} is not a duration; write a whole number above 0 and a unit: "
            "s, m, h or d (such as 10m or 1h)."
        )
    return timedelta(seconds=int(match["number"]) * _SECONDS[match["unit"]])


def check_address(text: str) -> str:
    """text as a normal IP address (IPv4 or IPv6); Invalid in one sentence otherwise."""
    try:
        address = ipaddress.ip_address(text.strip() if isinstance(text, str) else text)
    except ValueError:
        raise Invalid(
            f"{str(text)[:100]!r} is not an IP address; give one such as 203.0.113.7 "
            "or 2001:db8::7."
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def networks(texts: Iterable[str]) -> tuple[IpNetwork, ...]:
    """IPv4 and IPv6 networks from their CIDRs (host bits allowed); Invalid naming a bad one."""
    parsed: list[IpNetwork] = []
    for text in texts:
        try:
            parsed.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise Invalid(
                f"{text!r} is not a network; write one such as 192.0.2.0/24 or 2001:db8::/32."
            ) from None
    return tuple(parsed)


@dataclass(frozen=True)
class BanPolicy:
    """How many failures within which window ban an address, for how long, and who never is."""

    max_failures: int = 10
    window: timedelta = timedelta(minutes=10)
    duration: timedelta = timedelta(hours=1)
    # Loopback is added whatever this holds; the caller adds the environments' bridge.
    never: tuple[str, ...] = ()

    def protects(self, address: str) -> bool:
        """Whether address may never be banned."""
        parsed = ipaddress.ip_address(address)
        return any(parsed in network for network in networks((*LOOPBACK, *self.never)))


@dataclass(frozen=True)
class Failure:
    """One connection from address that failed to sign in, at a time."""

    address: str
    at: datetime


@dataclass(frozen=True)
class Ban:
    """An address dropped by the host firewall until a time, for failures counted when made."""

    address: str
    until: datetime
    failures: int
    created: datetime


@dataclass(frozen=True)
class BanPlan:
    """Bans to add, bans to drop (run out, or now protected), failures older than forget_before."""

    add: tuple[Ban, ...]
    drop: tuple[Ban, ...]
    forget_before: datetime

    @property
    def changed(self) -> bool:
        """Whether the set of bans changes."""
        return bool(self.add or self.drop)


def active(bans: Iterable[Ban], now: datetime) -> list[Ban]:
    """The bans still in force at now, by address."""
    return sorted((ban for ban in bans if ban.until > now), key=lambda ban: ban.address)


def plan_bans(
    failures: Sequence[Failure], bans: Sequence[Ban], policy: BanPolicy, now: datetime
) -> BanPlan:
    """Ban each unprotected address with max_failures within the window; drop ended bans."""
    since = now - policy.window
    counts = Counter(failure.address for failure in failures if failure.at > since)
    drop = tuple(
        sorted(
            (ban for ban in bans if ban.until <= now or policy.protects(ban.address)),
            key=lambda ban: ban.address,
        )
    )
    kept = {ban.address for ban in bans} - {ban.address for ban in drop}
    add = tuple(
        Ban(address, now + policy.duration, count, now)
        for address, count in sorted(counts.items())
        if count >= policy.max_failures and address not in kept and not policy.protects(address)
    )
    return BanPlan(add=add, drop=drop, forget_before=since)
