"""Pure typed values: what the host firewall (nftables table inet cloche) must enforce."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cloche.model.errors import Invalid
from cloche.model.names import check_environment_name, check_user_name

FirewallMode = Literal["open", "protect"]
FIREWALL_MODES: tuple[FirewallMode, ...] = ("open", "protect")
EgressKeyword = Literal["open", "none"]

# Closed to environments whatever their egress: link-local (169.254.169.254 is the usual cloud
# metadata address) and the other clouds' metadata and DNS addresses. The networks of the host's
# own interfaces (its LAN) are added by the caller.
CLOSED_RANGES = ("100.100.100.200/32", "168.63.129.16/32", "169.254.0.0/16")
# None by default: Caddy's admin API is a unix socket (no port) and env_to_host drops every host
# port that is not public anyway; LXD's API port belongs here when LXD listens on the network.
DEFAULT_MANAGEMENT_PORTS: tuple[int, ...] = ()
# Tenant tags travel in the 32-bit packet mark.
MAX_TENANT_TAG = 2**32 - 1

# Names end up in an nft script, so each is held to a strict pattern (users and envs: names.py).
_INTERFACE = re.compile(r"[a-z][a-z0-9-]{0,14}")


def check_port(what: str, value: int) -> int:
    """Return value if it is a port (1 to 65535); raise Invalid naming what otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Invalid(f"{what} {value!r} is not a port; use a whole number from 1 to 65535.")
    return value


def _ports(what: str, values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({check_port(what, value) for value in values}))


def _ipv4(what: str, value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise Invalid(f"{what} {value!r} is not an IPv4 address such as 10.120.0.10.") from None


def _banned(values: Iterable[str]) -> tuple[str, ...]:
    try:
        parsed = {ipaddress.ip_address(value) for value in values}
    except ValueError:
        raise Invalid("Banned addresses must be IP addresses such as 203.0.113.7.") from None
    # IPv4 first, each family in numeric order: deterministic scripts.
    return tuple(str(address) for address in sorted(parsed, key=lambda a: (a.version, a)))


def _networks(what: str, values: Iterable[str]) -> tuple[str, ...]:
    try:
        parsed = [ipaddress.IPv4Network(value, strict=False) for value in values]
    except ValueError:
        raise Invalid(f"{what} must be IPv4 networks such as 192.168.1.0/24.") from None
    # nftables refuses overlapping intervals in one set.
    return tuple(str(network) for network in ipaddress.collapse_addresses(parsed))


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError:
        raise Invalid(
            f"Egress destination {value!r} is not an IPv4 network; write one such as "
            "140.82.112.0/20 (no host bits after the prefix)."
        ) from None


@dataclass(frozen=True)
class EgressAllow:
    """Egress limited to these IPv4 networks (CIDRs); anything else leaving the host is dropped."""

    cidrs: tuple[str, ...]

    def __post_init__(self) -> None:
        # nftables refuses overlapping intervals in one set, so nested networks are merged.
        networks = ipaddress.collapse_addresses(
            ipaddress.IPv4Network(_cidr(cidr)) for cidr in self.cidrs
        )
        object.__setattr__(self, "cidrs", tuple(str(network) for network in networks))


EgressPolicy = EgressKeyword | EgressAllow


@dataclass(frozen=True)
class EnvNetwork:
    """One environment as the firewall sees it: owner, name, IPv4 address, egress policy."""

    user: str
    env: str
    address: str
    egress: EgressPolicy = "open"

    def __post_init__(self) -> None:
        check_user_name(self.user)
        check_environment_name(self.env)
        object.__setattr__(self, "address", _ipv4(f"The address of {self.name}", self.address))
        if not isinstance(self.egress, EgressAllow) and self.egress not in ("open", "none"):
            raise Invalid(
                f"Egress policy {self.egress!r} of {self.name} is unknown; "
                "use 'open', 'none' or a list of networks."
            )

    @property
    def name(self) -> str:
        """The 'user/env' address of this environment."""
        return f"{self.user}/{self.env}"


def _tags(tags: Mapping[str, int], users: set[str]) -> dict[str, int]:
    missing = sorted(users - set(tags))
    if missing:
        raise Invalid(f"User {missing[0]} has environments but no tenant tag; give every user one.")
    owners: dict[int, str] = {}
    for user, tag in sorted(tags.items()):
        if isinstance(tag, bool) or not isinstance(tag, int) or not 1 <= tag <= MAX_TENANT_TAG:
            raise Invalid(
                f"The tenant tag of {user} must be a whole number from 1 to {MAX_TENANT_TAG}."
            )
        if tag in owners:
            raise Invalid(f"{owners[tag]} and {user} share the tenant tag {tag}; tags must differ.")
        owners[tag] = user
    return dict(sorted(tags.items()))


@dataclass(frozen=True)
class FirewallPolicy:
    """Everything the host firewall enforces; render.nftables turns it into one nft script."""

    # 'protect' drops unsolicited traffic to the host except SSH, HTTP(S) and published ports;
    # 'open' leaves the host's own input alone. In both, environments reach only DHCP, DNS and
    # the host's public services, and tenants are isolated from each other.

    mode: FirewallMode
    bridge: str
    gateway: str
    ssh_port: int = 22
    published_tcp: tuple[int, ...] = ()
    published_udp: tuple[int, ...] = ()
    envs: tuple[EnvNetwork, ...] = ()
    management_ports: tuple[int, ...] = DEFAULT_MANAGEMENT_PORTS
    # Destinations no environment reaches (CLOSED_RANGES and the host's networks), except those
    # inside an opened range (the config's network.open_ranges).
    closed: tuple[str, ...] = CLOSED_RANGES
    opened: tuple[str, ...] = ()
    # Each user's tenant tag (their uid base: unique, never 0), which tells tenants apart.
    tenant_tags: Mapping[str, int] = field(default_factory=dict)
    # Addresses dropped for failing to sign in to sshd (IPv4 and IPv6; model/bans.py).
    banned: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in FIREWALL_MODES:
            raise Invalid(f"Firewall mode {self.mode!r} is unknown; use 'open' or 'protect'.")
        if not _INTERFACE.fullmatch(self.bridge):
            raise Invalid(
                f"Bridge name {self.bridge!r} is not valid; use 1 to 15 characters: a lowercase "
                "letter, then lowercase letters, digits or '-'."
            )
        check_port("The SSH port", self.ssh_port)
        set_ = object.__setattr__
        set_(self, "gateway", _ipv4("The bridge gateway", self.gateway))
        set_(self, "closed", _networks("Closed ranges", self.closed))
        set_(self, "opened", _networks("Open ranges", self.opened))
        set_(self, "published_tcp", _ports("Published TCP port", self.published_tcp))
        set_(self, "published_udp", _ports("Published UDP port", self.published_udp))
        set_(self, "management_ports", _ports("Management port", self.management_ports))
        set_(self, "banned", _banned(self.banned))
        exposed = {self.ssh_port, 80, 443, *self.published_tcp} & set(self.management_ports)
        if exposed:
            raise Invalid(
                f"Port {min(exposed)} is both a management port and a public one; "
                "publish services on other ports."
            )
        envs = sorted(self.envs, key=lambda env: (env.user, env.env))
        seen: dict[str, str] = {}
        for env in envs:
            if env.address in seen:
                raise Invalid(
                    f"{env.name} and {seen[env.address]} share the address {env.address}; "
                    "give each environment its own address."
                )
            seen[env.address] = env.name
        set_(self, "envs", tuple(envs))
        set_(self, "tenant_tags", _tags(self.tenant_tags, {env.user for env in envs}))
