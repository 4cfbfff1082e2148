"""The SSH audit follower: cloche users' logins and refusals, root's logins, nothing forged."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core.ssh_audit import audit_new_authentications
from cloche.host.adapters import HostSshd
from cloche.host.logs import new_file_lines
from cloche.model.config import ClocheConfig, SshConfig
from tests.unit.fakes import FakeContext, add_user, events, fake_context, public_key

EMERGENCY = "SHA256:PCt5By54tlPs3s1rc8xlvo2piFbfsBLqHNBV5GuNHDY"  # tests/unit/data/ed25519.pub
OTHER = "SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"
FORGED_NAME = f"Accepted publickey for alice from 6.6.6.6 port 1 ssh2: ED25519 {OTHER}"


class LogFileSshd(HostSshd):
    """The host's sshd adapter reading a test's log file, never the journal."""

    def new_log_lines(self, state_dir: Path, log_file: Path) -> list[str]:
        """New lines of log_file, as the daemon reads them without systemd."""
        return new_file_lines(log_file, state_dir / "sshd.offset")


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    config = ClocheConfig(ssh=SshConfig(emergency_keys=[public_key("ed25519"), "not a key"]))
    with fake_context(tmp_path, config) as context:
        context.host = dataclasses.replace(context.host, sshd=LogFileSshd())
        (context.state_dir / "log").mkdir()
        add_user(context, "alice")
        yield context


def sshd_writes(context: FakeContext, *messages: str) -> None:
    # As sshd -E writes them: one "\r\n" after each message, names unescaped but for ':'.
    with (context.state_dir / "log" / "sshd.log").open("ab") as log:
        for message in messages:
            log.write(message.encode() + b"\r\n")


def test_logins_and_refusals_of_cloche_users_are_recorded(context: FakeContext) -> None:
    sshd_writes(
        context,
        f"Accepted publickey for alice from 192.0.2.7 port 40000 ssh2: ED25519 {OTHER}",
        f"Failed publickey for alice from 192.0.2.8 port 40001 ssh2: RSA {OTHER}",
        f"Accepted publickey for bob from 192.0.2.7 port 40002 ssh2: ED25519 {OTHER}",
    )
    assert audit_new_authentications(context) == 2
    (login,) = events(context, "authenticated over SSH")
    assert (login.actor, login.target, login.outcome) == ("alice", "jump:alice", "succeeded")
    assert login.details == {
        "method": "publickey",
        "key": f"ED25519 {OTHER}",
        "source": "192.0.2.7:40000",
    }
    (refusal,) = events(context, "was refused over SSH")
    assert refusal.outcome == "failed"
    assert audit_new_authentications(context) == 0  # read once, from the saved offset


@pytest.mark.parametrize(
    "name",
    [
        FORGED_NAME,
        f"x\nAccepted publickey for alice from 6.6.6.6 port 1 ssh2: ED25519 {OTHER}\ny",
        f"x\x0bAccepted publickey for alice from 6.6.6.6 port 1 ssh2: ED25519 {OTHER}",
        f"x\u2028Accepted publickey for alice from 6.6.6.6 port 1 ssh2: ED25519 {OTHER}",
        "alice from 6.6.6.6 port 1 ssh2",
    ],
)
def test_hostile_user_names_write_no_event(context: FakeContext, name: str) -> None:
    logged = name.split(":", 1)[0]  # sshd logs the name up to its first ':'
    sshd_writes(
        context,
        f"Invalid user {logged} from 127.0.0.1 port 40000",
        f"Failed none for invalid user {logged} from 127.0.0.1 port 40000 ssh2",
        f"Connection closed by invalid user {logged} 127.0.0.1 port 40000 [preauth]",
    )
    assert audit_new_authentications(context) == 0
    # Positive control: a real login right after is recorded.
    sshd_writes(
        context, f"Accepted publickey for alice from 127.0.0.1 port 40001 ssh2: ED25519 {OTHER}"
    )
    assert audit_new_authentications(context) == 1
    assert [event.details["source"] for event in events(context, "authenticated over SSH")] == [
        "127.0.0.1:40001"
    ]


def test_root_logins_are_recorded_with_the_key_and_whether_it_is_an_emergency_key(
    context: FakeContext,
) -> None:
    sshd_writes(
        context,
        f"Accepted publickey for root from 192.0.2.9 port 50000 ssh2: ED25519 {EMERGENCY}",
        f"Accepted publickey for root from 2001:db8::9 port 50001 ssh2: RSA {OTHER}",
        f"Failed publickey for root from 192.0.2.10 port 50002 ssh2: RSA {OTHER}",
    )
    assert audit_new_authentications(context) == 2
    emergency, own = events(context, "logged in to the host as root over SSH")
    assert (emergency.actor, emergency.target, emergency.outcome) == (
        "root",
        "host:root",
        "succeeded",
    )
    assert emergency.details == {
        "key": f"ED25519 {EMERGENCY}",
        "emergency_key": True,
        "source": "192.0.2.9:50000",
    }
    assert own.details["emergency_key"] is False
    assert own.details["source"] == "[2001:db8::9]:50001"
