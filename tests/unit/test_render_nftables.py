"""The host firewall script (golden), its one table, its determinism, and nft's own check."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cloche.model.errors import Invalid
from cloche.model.firewall import EgressAllow, EnvNetwork, FirewallPolicy
from cloche.render.nftables import (
    MAX_COMMENT,
    render_element_changes,
    render_ruleset,
    render_structure,
    set_elements,
)
from tests.unit.golden import GOLDEN_DIR, assert_golden

BRIDGE = "clochebr0"
GATEWAY = "10.120.0.1"

TWO_TENANTS = (
    EnvNetwork("alice", "web", "10.120.0.10"),
    EnvNetwork("alice", "db", "10.120.0.9"),
    EnvNetwork("bob", "api", "10.120.1.2"),
)

TAGS = {"alice": 100000, "bob": 165536, "carol": 231072, "dave-2": 296608}

POLICIES: dict[str, FirewallPolicy] = {
    "open-two-tenants": FirewallPolicy(
        mode="open", bridge=BRIDGE, gateway=GATEWAY, envs=TWO_TENANTS, tenant_tags=TAGS
    ),
    "protect-published": FirewallPolicy(
        mode="protect",
        bridge=BRIDGE,
        gateway=GATEWAY,
        ssh_port=2200,
        published_tcp=(5432, 2222, 8080),
        published_udp=(51820,),
        envs=TWO_TENANTS,
        management_ports=(2019, 8443),
        tenant_tags=TAGS,
        banned=("203.0.113.70", "2001:db8::7", "203.0.113.8"),
    ),
    "egress": FirewallPolicy(
        mode="protect",
        bridge="envs0",
        gateway="172.30.0.1",
        envs=(
            EnvNetwork("carol", "sandbox", "172.30.0.20", "none"),
            EnvNetwork(
                "carol",
                "agent",
                "172.30.0.21",
                EgressAllow(("151.101.0.0/16", "140.82.112.0/20", "151.101.64.0/18")),
            ),
            EnvNetwork("dave-2", "agent", "172.30.0.3", EgressAllow(("1.1.1.1",))),
            EnvNetwork("dave-2", "dev", "172.30.0.4"),
        ),
        tenant_tags=TAGS,
    ),
    "empty": FirewallPolicy(mode="open", bridge=BRIDGE, gateway=GATEWAY),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_ruleset_golden(name: str) -> None:
    assert_golden(f"nftables/{name}.nft", render_ruleset(POLICIES[name]))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_only_table_inet_cloche_is_ever_named(name: str) -> None:
    text = render_ruleset(POLICIES[name])
    assert not re.search(r"\bflush\s+ruleset\b", text)
    tables = re.findall(r"\btable\s+(\S+)\s+(\S+)", text)
    assert tables, "no table at all"
    assert set(tables) == {("inet", "cloche")}
    # Delete-and-recreate within one file: create (so delete never fails), delete, declare.
    statements = [line for line in text.splitlines() if line.startswith(("table", "delete"))]
    assert statements == [
        "table inet cloche {}",
        "delete table inet cloche",
        "table inet cloche {",
    ]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_rule_says_why_within_nfts_comment_limit(name: str) -> None:
    # Chain and set bodies sit two tabs deep; set elements (three tabs) name their env instead.
    lines = render_ruleset(POLICIES[name]).splitlines()
    body = [line[2:] for line in lines if line.startswith("\t\t")]
    rules = [line for line in body if line[0] not in "\t}"]
    rules = [line for line in rules if not line.startswith(("type ", "flags ", "elements "))]
    assert rules
    for rule in rules:
        comment = re.search(r' comment "([^"]*)"$', rule)
        assert comment, f"rule without a comment: {rule}"
        assert len(comment.group(1).encode()) <= MAX_COMMENT, rule


def test_rendering_is_deterministic_whatever_the_input_order() -> None:
    policy = POLICIES["protect-published"]
    shuffled = dataclasses.replace(
        policy,
        envs=tuple(reversed(policy.envs)),
        published_tcp=tuple(reversed(policy.published_tcp)),
        management_ports=(8443, 2019, 8443),
    )
    assert render_ruleset(shuffled) == render_ruleset(policy)
    assert render_ruleset(policy) == render_ruleset(policy)


def test_addresses_are_sorted_numerically_within_a_tenant_set() -> None:
    text = render_ruleset(POLICIES["open-two-tenants"])
    assert text.index("10.120.0.9 ") < text.index("10.120.0.10 ")


def test_open_mode_accepts_by_default_but_still_fences_the_bridge() -> None:
    text = render_ruleset(POLICIES["open-two-tenants"])
    assert "hook input priority 0; policy accept;" in text
    assert 'iifname "clochebr0" jump env_to_host' in text
    env_to_host = _chain(text, "env_to_host")
    assert env_to_host[-1].startswith("drop ")
    # No management port by default (Caddy's admin API is a unix socket): no empty nft set.
    assert not any("management" in rule or "{ }" in rule for rule in env_to_host)


def test_protect_mode_drops_by_default_and_opens_only_public_ports() -> None:
    text = render_ruleset(POLICIES["protect-published"])
    assert "hook input priority 0; policy drop;" in text
    input_rules = _chain(text, "input")
    assert any(rule.startswith("tcp dport 2200 accept") for rule in input_rules)
    assert any(rule.startswith("tcp dport { 2222, 5432, 8080 } accept") for rule in input_rules)
    assert any(rule.startswith("udp dport { 51820 } accept") for rule in input_rules)
    assert not any("dport 22 " in rule for rule in input_rules)


def test_forward_never_drops_by_policy_and_isolates_tenants() -> None:
    text = render_ruleset(POLICIES["open-two-tenants"])
    assert "hook forward priority 0; policy accept;" in text
    rules = [rule.split(" comment ")[0] for rule in _chain(text, "env_to_env")]
    assert rules == [
        "ip saddr != @tenant_of drop",
        "meta mark set ip saddr map @tenant_of",
        "ip daddr . meta mark @tenant_members accept",
        "drop",
    ]
    # Each address carries its owner's tag, in both the map and the membership set.
    assert '10.120.0.10 comment "alice/web" : 0x000186a0,' in text
    assert '10.120.1.2 . 0x000286a0 comment "bob/api",' in text
    from_envs = _chain(text, "from_envs")
    assert from_envs[0].startswith("ip daddr @closed_ranges ip daddr != @open_ranges drop")
    assert "169.254.0.0/16," in text  # link-local (metadata) is in the closed set


def test_opened_ranges_and_egress_none_dns() -> None:
    policy = FirewallPolicy(
        mode="open",
        bridge="clochebr0",
        gateway="10.120.0.1",
        envs=(EnvNetwork("alice", "quiet", "10.120.0.10", "none"),),
        tenant_tags=TAGS,
        closed=("169.254.0.0/16", "192.0.2.7/24", "169.254.169.254/32"),
        opened=("192.0.2.0/28",),
    )
    assert policy.closed == ("169.254.0.0/16", "192.0.2.0/24")  # merged, host bits dropped
    text = render_ruleset(policy)
    assert "192.0.2.0/28," in text
    to_host = _chain(text, "env_to_host")
    dns_drop = to_host.index(
        'ip saddr @egress_none udp dport 53 drop comment "egress none: no DNS, no channel out"'
    )
    dns_accept = next(i for i, rule in enumerate(to_host) if "udp dport 53 accept" in rule)
    assert dns_drop < dns_accept


def test_egress_allow_list_merges_overlapping_networks() -> None:
    assert EgressAllow(("10.1.0.0/16", "10.0.0.0/8", "1.1.1.1")).cidrs == (
        "1.1.1.1/32",
        "10.0.0.0/8",
    )


@pytest.mark.parametrize(
    ("build", "phrase"),
    [
        (lambda: FirewallPolicy(mode="closed", bridge=BRIDGE, gateway=GATEWAY), "mode"),  # type: ignore[arg-type]
        (lambda: FirewallPolicy(mode="open", bridge='br0"; flush', gateway=GATEWAY), "Bridge"),
        (lambda: FirewallPolicy(mode="open", bridge=BRIDGE, gateway="10.120.0.300"), "IPv4"),
        (lambda: FirewallPolicy(mode="open", bridge=BRIDGE, gateway=GATEWAY, ssh_port=0), "port"),
        (
            lambda: FirewallPolicy(
                mode="open",
                bridge=BRIDGE,
                gateway=GATEWAY,
                published_tcp=(8443,),
                management_ports=(8443,),
            ),
            "both a management port and a public one",
        ),
        (
            lambda: FirewallPolicy(
                mode="open",
                bridge=BRIDGE,
                gateway=GATEWAY,
                envs=(EnvNetwork("a", "x", "10.1.1.1"), EnvNetwork("b", "y", "10.1.1.1")),
                tenant_tags={"a": 1, "b": 2},
            ),
            "share the address",
        ),
        (
            lambda: FirewallPolicy(
                mode="open",
                bridge=BRIDGE,
                gateway=GATEWAY,
                envs=(EnvNetwork("a", "x", "10.1.1.1"),),
            ),
            "no tenant tag",
        ),
        (
            lambda: FirewallPolicy(
                mode="open", bridge=BRIDGE, gateway=GATEWAY, tenant_tags={"a": 7, "b": 7}
            ),
            "share the tenant tag",
        ),
        (
            lambda: FirewallPolicy(
                mode="open", bridge=BRIDGE, gateway=GATEWAY, tenant_tags={"a": 0}
            ),
            "whole number from 1",
        ),
        (lambda: EnvNetwork("Alice", "web", "10.1.1.1"), "User name"),
        (lambda: EnvNetwork("alice", "web", "fe80::1"), "not an IPv4 address"),
        (lambda: EnvNetwork("alice", "web", "10.1.1.1", "some"), "Egress policy"),  # type: ignore[arg-type]
        (lambda: EgressAllow(("10.0.0.1/8",)), "no host bits"),
    ],
)
def test_bad_policies_are_refused_in_one_sentence(build: Callable[[], object], phrase: str) -> None:
    with pytest.raises(Invalid, match=phrase):
        build()


def _chain(text: str, name: str) -> list[str]:
    body = text.split(f"\tchain {name} {{\n", 1)[1].split("\n\t}", 1)[0]
    return [line.strip() for line in body.splitlines() if not line.strip().startswith("type ")]


NFT = shutil.which("nft")


@pytest.mark.skipif(NFT is None, reason="nft (nftables) is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="nft -c needs CAP_NET_ADMIN to reach the kernel")
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_nft_accepts_each_golden_ruleset_in_check_mode(name: str) -> None:
    # -c: the kernel checks the whole transaction and commits nothing.
    path = GOLDEN_DIR / "nftables" / f"{name}.nft"
    result = subprocess.run(
        [str(NFT), "-c", "-f", str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def _with_envs(name: str, *envs: EnvNetwork) -> FirewallPolicy:
    return dataclasses.replace(POLICIES[name], envs=envs)


def test_environments_change_set_elements_and_never_the_structure() -> None:
    base = POLICIES["egress"]
    grown = _with_envs("egress", *base.envs, EnvNetwork("alice", "new", "172.30.0.9", "none"))
    assert (
        render_structure(grown)
        == render_structure(base)
        == render_structure(dataclasses.replace(base, envs=()))
    )
    assert render_ruleset(grown) != render_ruleset(base)
    assert "elements" not in render_structure(base)
    assert render_structure(POLICIES["protect-published"]) != render_structure(
        dataclasses.replace(POLICIES["protect-published"], published_tcp=(5432,))
    )


def test_element_changes_delete_by_key_and_add_whole_elements() -> None:
    before = POLICIES["open-two-tenants"]
    web, _db, api = TWO_TENANTS
    after = dataclasses.replace(
        before, envs=(web, api, EnvNetwork("bob", "db", "10.120.0.9", "none"))
    )
    changes = render_element_changes(set_elements(before), set_elements(after))
    lines = changes.splitlines()
    assert lines[0] == "#!/usr/sbin/nft -f"
    # db's address moved from alice to bob: its old elements go by key, the new ones come whole.
    assert "delete element inet cloche tenant_of { 10.120.0.9 }" in lines
    assert "delete element inet cloche tenant_members { 10.120.0.9 . 0x000186a0 }" in lines
    assert 'add element inet cloche tenant_of { 10.120.0.9 comment "bob/db" : 0x000286a0 }' in lines
    assert 'add element inet cloche egress_none { 10.120.0.9 comment "bob/db" }' in lines
    deletes = [i for i, line in enumerate(lines) if line.startswith("delete ")]
    adds = [i for i, line in enumerate(lines) if line.startswith("add ")]
    assert max(deletes) < min(adds)
    assert not any("10.120.0.10" in line or "10.120.1.2" in line for line in lines)
    assert render_element_changes(set_elements(after), set_elements(after)) == ""
    assert render_element_changes(set_elements(after), set_elements(before)).count("add ") == 2


@pytest.mark.skipif(NFT is None, reason="nft (nftables) is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="nft -c needs CAP_NET_ADMIN to reach the kernel")
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_nft_accepts_element_changes_to_each_golden_ruleset(name: str, tmp_path: Path) -> None:
    before = POLICIES[name]
    moved = tuple(
        dataclasses.replace(env, address=f"10.99.{index}.1", egress="none")
        for index, env in enumerate(before.envs)
    )
    after = dataclasses.replace(
        before,
        envs=(*moved[1:], EnvNetwork("carol", "extra", "10.98.0.1", EgressAllow(("9.9.9.0/24",)))),
        tenant_tags=TAGS,
        opened=("169.254.1.0/24",),
    )
    changes = render_element_changes(set_elements(before), set_elements(after))
    assert changes
    script = tmp_path / "changes.nft"
    script.write_text(render_ruleset(before) + changes.removeprefix("#!/usr/sbin/nft -f\n"))
    result = subprocess.run(
        [str(NFT), "-c", "-f", str(script)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_banned_addresses_are_dropped_first_in_input_and_forward_by_family() -> None:
    text = render_ruleset(POLICIES["protect-published"])
    banned = set_elements(POLICIES["protect-published"])
    assert [element.text for element in banned["banned"]] == ["203.0.113.8", "203.0.113.70"]
    assert [element.text for element in banned["banned6"]] == ["2001:db8::7"]
    for chain in ("input", "forward"):
        body = text.split(f"\tchain {chain} {{\n", 1)[1].splitlines()
        assert body[1].startswith("\t\tip saddr @banned drop ")
        assert body[2].startswith("\t\tip6 saddr @banned6 drop ")
