"""Pure: the host firewall as one `nft -f` script that replaces table inet cloche and nothing else.

The script is one transaction: it creates the table if missing, deletes it and declares it again,
so loading it twice gives the same ruleset and a failed load changes nothing. Base chains here
only add drops: an accept in this table never overrides a drop in LXD's table or any other.

Everything that changes with environments (tenants, egress, ranges) lives in named sets, so the
rules (the table's structure) stay the same as environments come and go: `render_structure` is
the table with every set empty, `set_elements` what each set holds, and `render_element_changes`
the one-transaction script that turns one policy's elements into another's.

Tenants are told apart by a tag per user (its uid base): map tenant_of gives an address its
owner's tag, and set tenant_members holds each address with its owner's tag, so "same tenant" is
one lookup whatever the number of tenants. The forward hook writes the tag into the packet mark
of traffic between environments to compare them (nothing else on the bridge uses that mark).

Isolation between environments on the bridge is decided in the forward hook, which sees bridged
traffic only with br_netfilter on (net.bridge.bridge-nf-call-iptables and -ip6tables = 1); the
host reconciler turns it on. Environments' IPv6 addresses are not tracked per tenant, so IPv6 from
the bridge is dropped rather than allowed to bypass tenant isolation and egress rules.

Addresses banned for failing to sign in to sshd (sets banned and banned6) are dropped first in
the input and forward hooks, in both modes, so a ban also ends their open connections.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cloche.model.firewall import EgressAllow, EnvNetwork, FirewallPolicy
from cloche.model.text import one_line

TABLE = "inet cloche"
# nft refuses a comment longer than 128 bytes; tests hold every comment to it.
MAX_COMMENT = 128
HTTP_PORTS = (80, 443)

_ICMPV6_NEEDED = (
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "echo-request",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
)


@dataclass(frozen=True)
class SetElement:
    """One element of a named set: its key (what deletes it) and its whole text."""

    key: str
    text: str


@dataclass(frozen=True)
class _SetSpec:
    name: str
    why: str
    kind: str
    interval: bool = False


_SETS = (
    _SetSpec(
        "tenant_of", "Each environment's address and its owner's tenant tag.", "ipv4_addr : mark"
    ),
    _SetSpec(
        "tenant_members",
        "Each environment's address with its owner's tag: same-tenant traffic matches.",
        "ipv4_addr . mark",
    ),
    _SetSpec(
        "egress_none",
        "Environments with egress 'none': nothing they send leaves the host.",
        "ipv4_addr",
    ),
    _SetSpec(
        "egress_listed",
        "Environments with an egress allow list: only the networks below.",
        "ipv4_addr",
    ),
    _SetSpec(
        "egress_allowed",
        "Each allow-listed environment with one network it may reach.",
        "ipv4_addr . ipv4_addr",
        interval=True,
    ),
    _SetSpec(
        "closed_ranges",
        "Destinations no environment reaches: link-local, cloud metadata, the host's networks.",
        "ipv4_addr",
        interval=True,
    ),
    _SetSpec(
        "open_ranges",
        "Parts of the closed ranges opened on purpose (network.open_ranges).",
        "ipv4_addr",
        interval=True,
    ),
    _SetSpec(
        "banned",
        "IPv4 addresses banned for failing to sign in to sshd ('cloche host bans').",
        "ipv4_addr",
    ),
    _SetSpec("banned6", "IPv6 addresses banned for failing to sign in to sshd.", "ipv6_addr"),
)
SET_NAMES = tuple(spec.name for spec in _SETS)


def render_ruleset(policy: FirewallPolicy) -> str:
    """The complete nft script for policy: deterministic, one table, every rule commented."""
    return _render(policy, set_elements(policy))


def render_structure(policy: FirewallPolicy) -> str:
    """policy's script with every set empty: the same for policies that differ only in elements."""
    return _render(policy, {})


def render_element_changes(
    before: Mapping[str, Sequence[SetElement]], after: Mapping[str, Sequence[SetElement]]
) -> str:
    """One nft transaction turning the sets' elements from before into after ('' if equal)."""
    deletes: list[str] = []
    adds: list[str] = []
    for name in SET_NAMES:
        old = {element.text: element for element in before.get(name, ())}
        new = {element.text: element for element in after.get(name, ())}
        gone = [old[text].key for text in old if text not in new]
        added = [text for text in new if text not in old]
        if gone:
            deletes.append(f"delete element {TABLE} {name} {{ {', '.join(gone)} }}")
        if added:
            adds.append(f"add element {TABLE} {name} {{ {', '.join(added)} }}")
    if not deletes and not adds:
        return ""
    return "\n".join(["#!/usr/sbin/nft -f", *deletes, *adds]) + "\n"


def set_elements(policy: FirewallPolicy) -> dict[str, tuple[SetElement, ...]]:
    """What each named set of policy's table holds, in a deterministic order."""
    ordered = _by_address(policy.envs)
    listed = [env for env in ordered if isinstance(env.egress, EgressAllow)]
    tags = policy.tenant_tags
    return {
        "tenant_of": tuple(
            SetElement(env.address, f"{_element(env)} : {_mark(tags[env.user])}") for env in ordered
        ),
        "tenant_members": tuple(
            _keyed(env, f"{env.address} . {_mark(tags[env.user])}") for env in ordered
        ),
        "egress_none": tuple(_keyed(env) for env in ordered if env.egress == "none"),
        "egress_listed": tuple(_keyed(env) for env in listed),
        "egress_allowed": tuple(
            _keyed(env, f"{env.address} . {cidr}")
            for env in listed
            if isinstance(env.egress, EgressAllow)
            for cidr in env.egress.cidrs
        ),
        "closed_ranges": tuple(SetElement(cidr, cidr) for cidr in policy.closed),
        "open_ranges": tuple(SetElement(cidr, cidr) for cidr in policy.opened),
        "banned": tuple(SetElement(a, a) for a in policy.banned if ":" not in a),
        "banned6": tuple(SetElement(a, a) for a in policy.banned if ":" in a),
    }


def _render(policy: FirewallPolicy, elements: Mapping[str, Sequence[SetElement]]) -> str:
    lines = [
        "#!/usr/sbin/nft -f",
        "# Written by cloche from its firewall policy; edits here are replaced on the next change.",
        "# Only table inet cloche is replaced, in one transaction; other tables are left alone.",
        f"table {TABLE} {{}}",
        f"delete table {TABLE}",
        "",
        f"table {TABLE} {{",
    ]
    for spec in _SETS:
        lines += _set(spec, elements.get(spec.name, ()))
    verdict = "drop" if policy.mode == "protect" else "accept"
    lines += _chain(
        "input",
        f"type filter hook input priority 0; policy {verdict};",
        _input_rules(policy),
    )
    lines += _chain("env_to_host", None, _env_to_host_rules(policy))
    lines += _chain(
        "forward",
        "type filter hook forward priority 0; policy accept;",
        [
            *_BANNED_RULES,
            _rule(
                f'iifname "{policy.bridge}" jump from_envs',
                "traffic environments send through the host",
            ),
            _rule(
                f'oifname "{policy.bridge}" jump to_envs',
                "traffic from elsewhere towards environments",
            ),
        ],
    )
    lines += _chain("from_envs", None, _from_envs_rules(policy))
    lines += _chain("env_to_env", None, _ENV_TO_ENV_RULES)
    lines += _chain(
        "to_envs",
        None,
        [
            _rule("ct state established,related accept", "replies to connections envs opened"),
            _rule("ct status dnat accept", "ports LXD proxy devices publish with nat=true"),
            _rule("drop", "private by default: nothing outside opens a connection to an env"),
        ],
    )
    lines[-1:] = ["}"]
    return "\n".join(lines) + "\n"


def _rule(text: str, why: str) -> str:
    return f'{text} comment "{why}"'


def _chain(name: str, hook: str | None, rules: list[str]) -> list[str]:
    head = [f"\t\t{hook}"] if hook else []
    return [f"\tchain {name} {{", *head, *(f"\t\t{rule}" for rule in rules), "\t}", ""]


def _set(spec: _SetSpec, elements: Sequence[SetElement]) -> list[str]:
    keyword = "map" if ":" in spec.kind else "set"
    lines = [f"\t# {spec.why}", f"\t{keyword} {spec.name} {{", f"\t\ttype {spec.kind}"]
    if spec.interval:
        lines.append("\t\tflags interval")
    if elements:
        lines.append("\t\telements = {")
        lines += [f"\t\t\t{element.text}," for element in elements]
        lines.append("\t\t}")
    return [*lines, "\t}", ""]


def _ports(ports: Iterable[int]) -> str:
    return "{ " + ", ".join(str(port) for port in sorted(set(ports))) + " }"


def _by_address(envs: Iterable[EnvNetwork]) -> list[EnvNetwork]:
    return sorted(envs, key=lambda env: ipaddress.IPv4Address(env.address))


def _element(env: EnvNetwork, value: str | None = None) -> str:
    # The shared guard, under EnvNetwork's own checks: a name is written inside a comment.
    return f'{value or env.address} comment "{one_line(env.name, "The environment name")}"'


def _keyed(env: EnvNetwork, key: str | None = None) -> SetElement:
    return SetElement(key or env.address, _element(env, key))


def _mark(tag: int) -> str:
    # nft lists marks as 8 hex digits; writing them so keeps scripts and listings alike.
    return f"0x{tag:08x}"


# First in input and forward, before any accept: a ban ends even connections already open.
_BANNED_RULES = [
    _rule("ip saddr @banned drop", "banned for failing to sign in to sshd, in every mode"),
    _rule("ip6 saddr @banned6 drop", "banned for failing to sign in to sshd (IPv6)"),
]


def _public_tcp(policy: FirewallPolicy) -> list[int]:
    return [policy.ssh_port, *HTTP_PORTS, *policy.published_tcp]


def _input_rules(policy: FirewallPolicy) -> list[str]:
    bridge = f'iifname "{policy.bridge}" jump env_to_host'
    rules = [
        *_BANNED_RULES,
        _rule("ct state established,related accept", "replies to connections the host opened"),
        _rule(bridge, "environments reach only DHCP, DNS and public services, in every mode"),
    ]
    if policy.mode == "open":
        return rules
    rules += [
        _rule("ct state invalid drop", "packets that belong to no connection"),
        _rule('iifname "lo" accept', "the host talking to itself"),
        _rule("icmp type echo-request accept", "ping: reachability checks expose no service"),
        _rule(
            f"icmpv6 type {{ {', '.join(_ICMPV6_NEEDED)} }} accept",
            "IPv6 does not work without neighbour discovery and error messages",
        ),
        _rule("ip6 saddr fe80::/10 udp dport 546 accept", "DHCPv6 replies to the host's client"),
        _rule(f"tcp dport {policy.ssh_port} accept", "SSH: the jump host to environments"),
        _rule(f"tcp dport {_ports(HTTP_PORTS)} accept", "Caddy: published http(s) routes, ACME"),
        _rule("udp dport 443 accept", "Caddy: HTTP/3 for published https routes"),
    ]
    if policy.published_tcp:
        rules.append(
            _rule(f"tcp dport {_ports(policy.published_tcp)} accept", "published tcp routes")
        )
    if policy.published_udp:
        rules.append(
            _rule(f"udp dport {_ports(policy.published_udp)} accept", "published udp routes")
        )
    return rules


def _env_to_host_rules(policy: FirewallPolicy) -> list[str]:
    # An empty set is an nft syntax error, and with no management port there is nothing to drop.
    management = [
        _rule(
            f"tcp dport {_ports(policy.management_ports)} drop",
            "management ports never answer environments",
        )
    ]
    return [
        *(management if policy.management_ports else []),
        _rule("udp dport 67 accept", "DHCP: environments get their address from LXD's dnsmasq"),
        _rule("ip saddr @egress_none udp dport 53 drop", "egress none: no DNS, no channel out"),
        _rule("ip saddr @egress_none tcp dport 53 drop", "egress none: no DNS over TCP either"),
        _rule(f"ip daddr {policy.gateway} udp dport 53 accept", "DNS: LXD's dnsmasq, gateway"),
        _rule(f"ip daddr {policy.gateway} tcp dport 53 accept", "DNS over TCP, long answers"),
        _rule(
            f"tcp dport {_ports(_public_tcp(policy))} accept",
            "the host's public services: SSH, http(s) routes, published tcp ports",
        ),
        _rule(
            f"udp dport {_ports([443, *policy.published_udp])} accept",
            "the host's public UDP services: HTTP/3, published udp ports",
        ),
        _rule("drop", "the rest of the host (its own services) is not for environments"),
    ]


def _from_envs_rules(policy: FirewallPolicy) -> list[str]:
    return [
        _rule(
            "ip daddr @closed_ranges ip daddr != @open_ranges drop",
            "cloud metadata hands out the host's credentials; link-local and the host's LAN too",
        ),
        _rule(
            "meta nfproto ipv6 drop",
            "env IPv6 is not tracked per tenant: it would bypass isolation",
        ),
        _rule(
            "ct state established,related accept",
            "replies within connections allowed when they began",
        ),
        _rule(
            f'oifname "{policy.bridge}" jump env_to_env',
            "between environments: only within one tenant",
        ),
        _rule("ip saddr @egress_none drop", "egress none: nothing leaves the host"),
        _rule(
            "ip saddr . ip daddr @egress_allowed accept",
            "egress allow list: a listed network",
        ),
        _rule("ip saddr @egress_listed drop", "egress allow list: anything not listed"),
    ]


_ENV_TO_ENV_RULES = [
    _rule("ip saddr != @tenant_of drop", "an address cloche did not assign to an environment"),
    _rule("meta mark set ip saddr map @tenant_of", "the sender's tenant tag, to compare"),
    _rule(
        "ip daddr . meta mark @tenant_members accept",
        "the receiver belongs to the sender's tenant: environments of one tenant reach each other",
    ),
    _rule("drop", "another tenant's environment, or an address cloche did not assign"),
]
