"""Attacks on the host's surface: the SSH audit cannot be forged through sshd's own log.

Every probe has a positive control: the same real ssh client, the same host sshd (port 22, the
one whose log the daemon follows), a real login that does write its event. The daemon reads the
log in order, so once the control's event is there every probe before it has been read too.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloche.render.sshd import EMERGENCY_KEYS_PATH
from tests.integration.cloche_cli import cloche_ok
from tests.integration.test_environments import make_user, remove_user
from tests.integration.test_ssh_access import keypair

HOST = "127.0.0.1"
FORGED_SOURCE = "6.6.6.6"


def ssh(user: str, key: Path, known_hosts: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """The real ssh client at the host's sshd, as user (any bytes), never asking anything."""
    return subprocess.run(
        [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(key),
            "-p",
            "22",
            "-l",
            user,
            HOST,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fingerprint(key: Path) -> str:
    """The key's SHA256 fingerprint as sshd logs it."""
    listed = subprocess.run(
        ["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()[1]


def audit_events() -> list[dict[str, Any]]:
    """The last audit events, oldest first."""
    lines = cloche_ok("audit", "tail", "-n", "500", "--json").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def wait_for_event(matches: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """Every recent event, once one satisfies matches (the test fails if none does in time)."""
    deadline = time.monotonic() + timeout
    while True:
        events = audit_events()
        if any(matches(event) for event in events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"no such audit event within {timeout:.0f} s: {events[-20:]}")
        time.sleep(1)


@pytest.fixture(scope="module")
def victim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A cloche user (their jump account on the host sshd) and their own key."""
    cloche_ok("host", "init")
    key = keypair(tmp_path_factory.mktemp("victim"), "victim")
    name = make_user()
    try:
        cloche_ok("user", "key", "add", name, f"{key}.pub")
        yield name, key
    finally:
        remove_user(name)


def hostile_names(user: str, print_: str) -> list[str]:
    """User names that put a cloche user's login inside sshd's messages about them."""
    forged = f"Accepted publickey for {user} from {FORGED_SOURCE} port 1 ssh2: ED25519 {print_}"
    return [
        forged,  # the attack, word for word
        f"Accepted publickey for {user} from {FORGED_SOURCE} port 1 ssh2: ED25519 SHA256:x",
        f"{user} from {FORGED_SOURCE} port 1 ssh2: ED25519 {print_}",
        f"x from {FORGED_SOURCE} port 1 ssh2",
        f"x\nAccepted publickey for {user} from {FORGED_SOURCE} port 1 ssh2\ny",
        f"x\x0b{forged}",
        f"x\u2028{forged}",
        f"x\x1c{forged}",
    ]


def test_forged_log_lines_in_user_names_write_no_event_while_a_real_login_does(
    victim: tuple[str, Path], tmp_path: Path
) -> None:
    user, key = victim
    known = tmp_path / "known_hosts"
    stranger = keypair(tmp_path, "stranger")
    for name in hostile_names(user, fingerprint(key)):
        probe = ssh(name, stranger, known, "true")
        # Refused by sshd, or by the client itself for control characters: never let in.
        assert probe.returncode == 255, (name, probe.stdout, probe.stderr)
    # Positive control: the user's real login, after every probe, writes its event.
    login = ssh(user, key, known, "true")
    assert "Permission denied" not in login.stderr, login.stderr
    print_ = fingerprint(key)

    def real_login(event: dict[str, Any]) -> bool:
        return (
            event["actor"] == user
            and event["action"] == "authenticated over SSH"
            and print_ in str(event["details"])
        )

    events = wait_for_event(real_login)
    mine = [event for event in events if event["target"] == f"jump:{user}"]
    assert [event for event in mine if FORGED_SOURCE in json.dumps(event)] == []
    accepted = [event for event in mine if event["action"] == "authenticated over SSH"]
    assert len(accepted) == 1, accepted
    assert str(accepted[0]["details"]["source"]).startswith(f"{HOST}:")


def disconnect_with(text: str, port: int = 22) -> None:
    """Say hello to sshd and leave with text as the reason (plaintext, before any key exchange)."""
    reason = text.encode()
    payload = b"\x01" + struct.pack(">II", 11, len(reason)) + reason + struct.pack(">I", 0)
    padding = 8 - (len(payload) + 5) % 8
    padding += 8 if padding < 4 else 0
    packet = struct.pack(">IB", len(payload) + padding + 1, padding) + payload + bytes(padding)
    with socket.create_connection((HOST, port), timeout=10) as connection:
        connection.sendall(b"SSH-2.0-probe\r\n")
        assert connection.recv(256).startswith(b"SSH-2.0-")
        connection.sendall(packet)
        with contextlib.suppress(OSError):
            connection.recv(4096)  # sshd's own goodbye, or the connection closed


def test_a_forged_line_in_a_disconnect_reason_writes_no_event(
    victim: tuple[str, Path], tmp_path: Path
) -> None:
    # sshd itself leaves these newlines unescaped on stderr (-e, -E); the relay (without
    # systemd) or syslog (the journal) keeps the whole message on one line.
    user, key = victim
    print_ = fingerprint(key)
    forged = f"Accepted publickey for {user} from {FORGED_SOURCE} port 1 ssh2: ED25519 {print_}"
    disconnect_with(f"bye\r\n{forged}\r\nConnection closed by {FORGED_SOURCE} port 1")
    # Positive control: the real login after the probe writes its event.
    login = ssh(user, key, tmp_path / "known_hosts", "true")
    assert "Permission denied" not in login.stderr, login.stderr
    events = wait_for_event(
        lambda event: (
            event["actor"] == user
            and FORGED_SOURCE not in json.dumps(event)
            and event["action"] == "authenticated over SSH"
            and f"{HOST}:" in str(event["details"])
        )
    )
    assert [event for event in events if FORGED_SOURCE in json.dumps(event)] == []


def test_a_root_login_with_an_emergency_key_is_audited(tmp_path: Path) -> None:
    # The emergency keys file as 'cloche host init' writes it from ssh.emergency_keys, with one
    # more key for this test only; the previous file comes back whatever happens.
    emergency = Path(EMERGENCY_KEYS_PATH)
    previous = emergency.read_text() if emergency.exists() else None
    admin = keypair(tmp_path, "emergency")
    known = tmp_path / "known_hosts"
    refused_before = ssh("root", admin, known, "true")
    assert refused_before.returncode == 255  # the key means nothing before it is listed
    try:
        emergency.write_text((previous or "") + admin.with_suffix(".pub").read_text())
        login = ssh("root", admin, known, "id", "-u")
        assert (login.returncode, login.stdout) == (0, "0\n"), login.stderr
    finally:
        if previous is None:
            emergency.unlink(missing_ok=True)
        else:
            emergency.write_text(previous)
    print_ = fingerprint(admin)

    def root_login(event: dict[str, Any]) -> bool:
        return event["action"] == "logged in to the host as root over SSH" and (
            print_ in str(event["details"])
        )

    events = wait_for_event(root_login)
    # One event: the refused attempt before the key was listed is none (only logins as root).
    (event,) = [event for event in events if print_ in json.dumps(event)]
    assert root_login(event)
    assert (event["actor"], event["target"], event["outcome"]) == ("root", "host:root", "succeeded")
    assert str(event["details"]["source"]).startswith(f"{HOST}:")
    assert "emergency_key" in event["details"]
