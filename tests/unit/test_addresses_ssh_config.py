"""Static address allocation, and the generated ssh_config and known_hosts (golden)."""

from __future__ import annotations

import pytest

from cloche.model.addresses import address_mismatch, allocate_address
from cloche.model.errors import QuotaExceeded
from cloche.render.ssh_config import SshTarget, render_known_hosts, render_ssh_config
from tests.unit.golden import assert_golden

TARGETS = [
    SshTarget("web", "10.120.0.11", {"ssh-ed25519": "ssh-ed25519 AAAAweb"}),
    SshTarget("api", "10.120.0.10", {"ssh-ed25519": "ssh-ed25519 AAAAapi", "ecdsa": "ecdsa AAAAx"}),
]


def test_lowest_free_address_after_the_reserved_ones() -> None:
    assert allocate_address("10.120.0.0/16", []) == "10.120.0.10"
    assert allocate_address("10.120.0.0/16", ["10.120.0.10", "10.120.0.12"]) == "10.120.0.11"
    assert allocate_address("192.168.5.0/24", ["192.168.5.10"]) == "192.168.5.11"


def test_a_full_range_is_refused_clearly() -> None:
    used = [f"10.9.9.{host}" for host in range(10, 255)]
    with pytest.raises(QuotaExceeded, match="no free address left"):
        allocate_address("10.9.9.0/24", used)


def test_ssh_config_pins_every_key_through_the_jump_account() -> None:
    config = render_ssh_config("alice", "host.example", 2222, "/home/a/.ssh/cloche-alice", TARGETS)
    assert_golden("ssh/config-alice", config)
    assert config.count("StrictHostKeyChecking yes") == 3
    assert "StrictHostKeyChecking no" not in config
    known = render_known_hosts("alice", "host.example", 2222, ["ssh-ed25519 AAAAhost"], TARGETS)
    assert_golden("ssh/known_hosts-alice", known)
    assert known.splitlines()[0] == "[host.example]:2222 ssh-ed25519 AAAAhost"


def test_an_address_the_guest_adds_is_a_mismatch_and_the_assigned_one_alone_is_not() -> None:
    assert address_mismatch("alice/web", "10.120.0.11", ["10.120.0.11"]) is None
    assert address_mismatch("alice/web", "10.120.0.11", []) is None  # not up yet
    first = address_mismatch("alice/web", "10.120.0.11", ["10.120.0.12", "10.120.0.11"])
    assert first is not None
    assert first.startswith("alice/web reports 10.120.0.12, 10.120.0.11 on eth0")
    assert "cloche assigned 10.120.0.11" in first
    assert address_mismatch("alice/web", "10.120.0.11", ["10.120.0.250"]) is not None
