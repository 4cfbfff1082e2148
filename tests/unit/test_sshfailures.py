"""Failed sign-ins in sshd's log lines: sshd's own shapes only, the address sshd wrote."""

from __future__ import annotations

import pytest

from cloche.model.sshfailures import SshOutcome, parse_outcome

KEY = "ED25519 SHA256:/tpUqYlzC8Z0DqMrajqUzD8+a+gxQKLEd19cBZ4eTOY"
FORGED = "x from 6.6.6.6 port 1"


@pytest.mark.parametrize(
    "line",
    [
        "Failed password for alice from 203.0.113.7 port 4022 ssh2",
        "Failed password for invalid user admin from 203.0.113.7 port 4022 ssh2",
        f"Failed publickey for alice from 203.0.113.7 port 4022 ssh2: {KEY}",
        "Failed keyboard-interactive/pam for invalid user oracle from 203.0.113.7 port 4022 ssh2",
        "Invalid user nosuchuser from 203.0.113.7 port 4022",
        "Connection closed by invalid user admin 203.0.113.7 port 4022 [preauth]",
        "Connection closed by authenticating user alice 203.0.113.7 port 4022 [preauth]",
        "Connection reset by authenticating user alice 203.0.113.7 port 4022 [preauth]",
        "Disconnected from invalid user admin 203.0.113.7 port 4022 [preauth]",
        "Disconnected from authenticating user root 203.0.113.7 port 4022 [preauth]",
        "error: maximum authentication attempts exceeded for invalid user admin from "
        "203.0.113.7 port 4022 ssh2 [preauth]",
        "error: maximum authentication attempts exceeded for root from 203.0.113.7 port 4022 "
        "ssh2 [preauth]",
        "Disconnecting invalid user admin 203.0.113.7 port 4022: Too many authentication "
        "failures [preauth]",
        "Disconnecting authenticating user root 203.0.113.7 port 4022: Too many authentication "
        "failures [preauth]",
        # -E's \r (the relay's lines and the journal's have none).
        "Invalid user admin from 203.0.113.7 port 4022\r",
    ],
)
def test_each_failure_shape_names_the_client(line: str) -> None:
    assert parse_outcome(line) == SshOutcome("203.0.113.7", 4022, failed=True)


def test_an_accepted_sign_in_is_an_outcome_too() -> None:
    line = f"Accepted publickey for alice from 2001:db8::7 port 50000 ssh2: {KEY}"
    assert parse_outcome(line) == SshOutcome("2001:db8::7", 50000, failed=False)


def test_an_ipv4_client_on_a_dual_stack_socket_has_one_form() -> None:
    line = "Invalid user admin from ::ffff:203.0.113.7 port 4022"
    assert parse_outcome(line) == SshOutcome("203.0.113.7", 4022, failed=True)


def test_a_link_local_client_is_its_address_without_the_zone() -> None:
    line = "Invalid user admin from fe80::1%eth0 port 4022"
    assert parse_outcome(line) == SshOutcome("fe80::1", 4022, failed=True)


@pytest.mark.parametrize(
    "line",
    [
        f"Failed password for invalid user {FORGED} from 203.0.113.7 port 4022 ssh2",
        f"Failed password for {FORGED} ssh2 from 203.0.113.7 port 4022 ssh2",
        f"Failed publickey for {FORGED} ssh2: {KEY} from 203.0.113.7 port 4022 ssh2: {KEY}",
        f"Invalid user {FORGED} from 203.0.113.7 port 4022",
        "Connection closed by invalid user x 6.6.6.6 port 1 [preauth] 203.0.113.7 port 4022 "
        "[preauth]",
        "Disconnecting invalid user x 6.6.6.6 port 1: Too many authentication failures "
        "[preauth] 203.0.113.7 port 4022: Too many authentication failures [preauth]",
        f"error: maximum authentication attempts exceeded for invalid user {FORGED} ssh2 "
        "[preauth] from 203.0.113.7 port 4022 ssh2 [preauth]",
    ],
)
def test_a_hostile_user_name_never_chooses_the_address(line: str) -> None:
    assert parse_outcome(line) == SshOutcome("203.0.113.7", 4022, failed=True)


def test_a_forged_acceptance_in_a_user_name_stays_a_failure_of_the_real_client() -> None:
    forged = f"Accepted publickey for alice from 6.6.6.6 port 1 ssh2: {KEY}"
    line = f"Invalid user {forged} from 203.0.113.7 port 4022"
    assert parse_outcome(line) == SshOutcome("203.0.113.7", 4022, failed=True)


@pytest.mark.parametrize(
    "line",
    [
        # The message must start with sshd's words: anything before them is not sshd's.
        "hello Invalid user admin from 203.0.113.7 port 4022",
        "Dec  2 16:37:21 host cron[1]: Invalid user admin from 203.0.113.7 port 4022",
        "sshd[812]: Invalid user admin from 203.0.113.7 port 4022",
        # A character sshd would have escaped: the line is not sshd's message.
        "Invalid user admin\x0b from 203.0.113.7 port 4022",
        # 'none' is every client's first probe; closing before naming a user is a scan.
        "Failed none for invalid user admin from 203.0.113.7 port 4022 ssh2",
        "Connection closed by 203.0.113.7 port 4022 [preauth]",
        "Disconnected from user alice 203.0.113.7 port 4022",
        "Accepted key ED25519 SHA256:abc found at /etc/cloche/ssh/authorized_keys/a:2",
        # Not addresses, or not ports.
        "Invalid user admin from 999.1.1.1 port 4022",
        "Invalid user admin from ::: port 4022",
        "Invalid user admin from 203.0.113.7 port 0",
        "Invalid user admin from 203.0.113.7 port 70000",
        "Invalid user admin from 203.0.113.7 port " + "9" * 5000,
        "Invalid user admin from 203.0.113.7 port 4022 trailing",
        "",
    ],
)
def test_other_lines_are_no_outcome(line: str) -> None:
    assert parse_outcome(line) is None
