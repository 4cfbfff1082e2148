"""The host sshd drop-in and the jump accounts' authorized_keys files (golden), and refusals."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from cloche.model.errors import Invalid
from cloche.render.sshd import (
    SshdSettings,
    render_authorized_keys,
    render_emergency_keys,
    render_sshd_dropin,
)
from tests.unit.golden import assert_golden

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJBf3/mPNdn8TRj7T3U+njTPV9g4GRslrt3p9crtBo7n alice@laptop"
)
OTHER_ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO64H3AA3U3iLpf88pxqtaC+BCBFI8RTDGc/QY3wsuld alice@phone"
)


def test_default_dropin_golden() -> None:
    assert_golden("sshd/50-cloche.conf", render_sshd_dropin(SshdSettings()))


def test_test_sshd_dropin_golden() -> None:
    settings = SshdSettings(
        group="tg0123",
        keys_dir=PurePosixPath("/run/cloche-test/keys"),
        emergency_keys=None,
        forward_backstop=("127.0.0.1:*",),
        port=2222,
        listen_address="127.0.0.1",
    )
    assert_golden("sshd/test-sshd.conf", render_sshd_dropin(settings))


def test_dropin_is_key_only_and_jump_accounts_are_forward_only() -> None:
    text = render_sshd_dropin(SshdSettings())
    lines = [line.strip() for line in text.splitlines()]
    for setting in (
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "LogLevel VERBOSE",
    ):
        assert lines.index(setting) < lines.index("Match User root")
    jump = lines[lines.index("Match Group cloche-users") :]
    for setting in ("PermitTTY no", "ForceCommand /usr/sbin/nologin", "AllowTcpForwarding local"):
        assert setting in jump
    # A real host keeps the Port and ListenAddress of its main sshd_config.
    assert not [line for line in lines if line.startswith(("Port ", "ListenAddress "))]


def test_authorized_keys_golden() -> None:
    assert_golden(
        "sshd/authorized_keys",
        render_authorized_keys(
            [ED25519, OTHER_ED25519, ED25519], ["10.120.0.5:22", "10.120.0.9:22", "10.120.0.5:22"]
        ),
    )


def test_authorized_keys_without_environments_allow_no_forwarding() -> None:
    assert_golden("sshd/authorized_keys-no-environment", render_authorized_keys([ED25519], []))
    assert "port-forwarding" not in render_authorized_keys([ED25519], [])


def test_authorized_keys_without_keys_let_nobody_in() -> None:
    text = render_authorized_keys([], ["10.120.0.5:22"])
    assert all(line.startswith("#") for line in text.splitlines())


def test_emergency_keys_golden() -> None:
    assert_golden("sshd/emergency_authorized_keys", render_emergency_keys([ED25519]))


@pytest.mark.parametrize(
    "destination",
    [
        "10.120.0.5",
        "10.120.0.5:",
        "10.120.0.5:0",
        "10.120.0.5:65536",
        "10.120.0.5:ssh",
        "10.120.0.5:+22",
        "10.120.0.256:22",
        "010.120.0.5:22",
        "env.example:22",
        "[fd42::5]:22",
        "fd42::5:22",
        '10.120.0.5:22",permitopen="10.0.0.1:22',
        "*:22",
        "",
    ],
)
def test_a_destination_must_be_an_ipv4_address_and_port(destination: str) -> None:
    with pytest.raises(Invalid, match="IPv4 address and port"):
        render_authorized_keys([ED25519], [destination])


@pytest.mark.parametrize(
    "line",
    [
        f"{ED25519}\nssh-ed25519 AAAA",
        f"{ED25519}\rrestrict",
        f'command="/bin/sh" {ED25519}',
        f'restrict,permitopen="10.0.0.1:22" {ED25519}',
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
        "",
    ],
)
def test_key_lines_cannot_smuggle_options_or_lines(line: str) -> None:
    with pytest.raises(Invalid):
        render_authorized_keys([line], ["10.120.0.5:22"])
    with pytest.raises(Invalid):
        render_emergency_keys([line])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SshdSettings(group="Cloche Users"), "group name"),
        (SshdSettings(keys_dir=PurePosixPath("relative/keys")), "must be absolute"),
        (SshdSettings(keys_dir=PurePosixPath("/etc/my keys")), "must be absolute"),
        (SshdSettings(keys_dir=PurePosixPath("/etc/keys%h")), "must be absolute"),
        (SshdSettings(emergency_keys=PurePosixPath("/root/k #x")), "must be absolute"),
        (SshdSettings(forward_backstop=()), "backstop is empty"),
        (SshdSettings(forward_backstop=("22",)), "is not 'host:port'"),
        (SshdSettings(forward_backstop=("*:22 any",)), "is not 'host:port'"),
        (SshdSettings(port=0), "outside 1-65535"),
        (SshdSettings(port=70000), "outside 1-65535"),
        (SshdSettings(listen_address="localhost"), "not an IP address"),
    ],
)
def test_bad_settings_are_refused(settings: SshdSettings, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        render_sshd_dropin(settings)
