"""Static address allocation, and the generated ssh_config and known_hosts (golden)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cloche.model.addresses import address_mismatch, allocate_address
from cloche.model.errors import Invalid, QuotaExceeded
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


HOSTILE_HOSTS = [
    "h.example\nProxyCommand touch /tmp/pwned",
    "h.example\rProxyCommand x",
    "h.example\u2028x",
    "fe80::1%eth0\nProxyCommand x",
    "h.example ProxyCommand",
    "",
    "-oProxyCommand=x",
    "a" * 254,
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_host_that_is_not_a_name_or_address_is_refused_by_both_renderers(host: str) -> None:
    with pytest.raises(Invalid, match=r"The SSH host .* is not valid; use a DNS name"):
        render_ssh_config("alice", host, 22, "/home/a/known", TARGETS)
    with pytest.raises(Invalid, match=r"The SSH host .* is not valid"):
        render_known_hosts("alice", host, 22, ["ssh-ed25519 AAAAhost"], TARGETS)


def test_names_and_addresses_are_accepted_as_hosts() -> None:
    for host in ("host.example", "h-1.Example.ORG", "192.0.2.7", "2001:db8::1", "localhost"):
        assert f"HostName {host}\n" in render_ssh_config("alice", host, 22, "/k", TARGETS)
    known = render_known_hosts("alice", "2001:db8::1", 2222, ["ssh-ed25519 AAAAhost"], [])
    assert known == "[2001:db8::1]:2222 ssh-ed25519 AAAAhost\n"


@pytest.mark.parametrize("port", [0, -1, 65536, 10**6])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(Invalid, match="is not a port"):
        render_ssh_config("alice", "host.example", port, "/k", TARGETS)


@pytest.mark.parametrize(
    "path", ["/k\nProxyCommand x", "/k\x00", "relative/k", '/k"x', "/home/%u/k", "/k\x1b[2J"]
)
def test_a_known_hosts_path_that_could_start_a_directive_is_refused(path: str) -> None:
    with pytest.raises(Invalid, match="known_hosts path"):
        render_ssh_config("alice", "host.example", 22, path, TARGETS)


def test_a_known_hosts_path_with_a_space_is_quoted() -> None:
    config = render_ssh_config("alice", "h.example", 22, "/Users/A B/k", TARGETS)
    assert '    UserKnownHostsFile "/Users/A B/k"\n' in config


@pytest.mark.parametrize(
    "key", ["ssh-ed25519 AAAA\n@cert-authority * ssh-ed25519 BBBB", "ssh-ed25519", "a b c"]
)
def test_a_host_key_with_more_than_type_and_base64_is_refused(key: str) -> None:
    target = SshTarget("web", "10.120.0.11", {"ssh-ed25519": key})
    with pytest.raises(Invalid, match="host keys of web"):
        render_known_hosts("alice", "h.example", 22, [], [target])
    with pytest.raises(Invalid, match="host's own SSH host keys"):
        render_known_hosts("alice", "h.example", 22, [key], [])


def test_a_target_that_is_not_an_environment_is_refused() -> None:
    for target in (SshTarget("web\nHost *", "10.0.0.1", {}), SshTarget("web", "10.0.0.1\n", {})):
        with pytest.raises(Invalid):
            render_ssh_config("alice", "h.example", 22, "/k", [target])
    with pytest.raises(Invalid, match="User name"):
        render_ssh_config("alice\nHost *", "h.example", 22, "/k", [])


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_openssh_reads_the_generated_config_as_cloche_meant(tmp_path: Path) -> None:
    """Positive control with the real parser (ssh -G connects nowhere): a quoted path with a
    space stays one path, and the jump host and port are the ones given."""
    known = tmp_path / "my keys" / "known_hosts"
    config = tmp_path / "config"
    config.write_text(render_ssh_config("alice", "192.0.2.7", 2222, str(known), TARGETS))
    shown = subprocess.run(
        ["ssh", "-G", "-F", str(config), "cloche-jump-alice"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert f"userknownhostsfile {known}" in shown
    assert {"hostname 192.0.2.7", "port 2222", "user alice"} <= set(shown)
    assert not [line for line in shown if line.startswith(("proxycommand", "localcommand"))]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_an_identity_file_is_named_in_the_jump_and_every_environment_block(tmp_path: Path) -> None:
    identity = tmp_path / "keys" / "my key"
    config = tmp_path / "config"
    config.write_text(
        render_ssh_config("alice", "192.0.2.7", 22, "/k", TARGETS, identity_file=str(identity))
    )
    for host in ["cloche-jump-alice", *(target.name for target in TARGETS)]:
        shown = subprocess.run(
            ["ssh", "-G", "-F", str(config), host], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert f"identityfile {identity}" in shown, host
        assert "identitiesonly yes" in shown, host
    # Without one, the config leaves the choice of key to the person's own settings.
    assert "IdentityFile" not in render_ssh_config("alice", "192.0.2.7", 22, "/k", TARGETS)


@pytest.mark.parametrize("path", ["relative/key", "/k\nProxyCommand x", "/a%b", '/a"b'])
def test_a_bad_identity_file_path_is_refused_in_one_sentence(path: str) -> None:
    with pytest.raises(Invalid, match="The identity file path"):
        render_ssh_config("alice", "h.example", 22, "/k", TARGETS, identity_file=path)
