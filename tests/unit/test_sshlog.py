"""Parsing sshd's authentication lines (LogLevel VERBOSE), as the audit follower reads them."""

from __future__ import annotations

import pytest

from cloche.model.sshlog import parse_auth_line

ACCEPTED = (
    "Accepted publickey for tjexp1 from 127.0.0.1 port 34306 ssh2: ED25519 "
    "SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"
)
FAILED = (
    "sshd[812]: Failed publickey for tjexp1 from 10.1.2.3 port 33566 ssh2: ED25519 "
    "SHA256:/tpUqYlzC8Z0DqMrajqUzD8+a+gxQKLEd19cBZ4eTOY"
)


def test_accepted_key() -> None:
    attempt = parse_auth_line(ACCEPTED)
    assert attempt is not None
    assert (attempt.user, attempt.source, attempt.port, attempt.accepted) == (
        "tjexp1",
        "127.0.0.1",
        34306,
        True,
    )
    assert attempt.key_type == "ED25519"
    assert attempt.fingerprint == "SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"


def test_refused_key_with_a_syslog_prefix() -> None:
    attempt = parse_auth_line(FAILED)
    assert attempt is not None
    assert not attempt.accepted
    assert attempt.source == "10.1.2.3"
    assert attempt.fingerprint == "SHA256:/tpUqYlzC8Z0DqMrajqUzD8+a+gxQKLEd19cBZ4eTOY"


def test_password_attempt_of_an_invalid_user_has_no_key() -> None:
    attempt = parse_auth_line("Failed password for invalid user eve from ::1 port 5 ssh2")
    assert attempt is not None
    assert (attempt.user, attempt.method, attempt.fingerprint) == ("eve", "password", None)


@pytest.mark.parametrize(
    "line",
    [
        "Accepted key ED25519 SHA256:abc found at /etc/cloche/ssh/authorized_keys/a:2",
        "Invalid user nosuchuserx from 127.0.0.1 port 33574",
        "Connection closed by authenticating user a 127.0.0.1 port 1 [preauth]",
        "",
    ],
)
def test_other_lines_are_not_authentications(line: str) -> None:
    assert parse_auth_line(line) is None
