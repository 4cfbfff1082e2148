"""Parsing sshd's authentication lines (LogLevel VERBOSE), as the audit follower reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.host.logs import new_file_lines, split_lines
from cloche.host.run import run
from cloche.model.sshlog import parse_auth_line, sshd_message

FINGERPRINT = "SHA256:DJfe3PrG97HUoV+KKLXTbyABw0T4VqicfHCQnfiXUkA"
ACCEPTED = f"Accepted publickey for tjexp1 from 127.0.0.1 port 34306 ssh2: ED25519 {FINGERPRINT}\r"
FAILED = (
    "Failed publickey for tjexp1 from 10.1.2.3 port 33566 ssh2: ED25519 "
    "SHA256:/tpUqYlzC8Z0DqMrajqUzD8+a+gxQKLEd19cBZ4eTOY"
)
# The attack: `ssh -l "$FORGED" host`; sshd cuts the name at ':' before it logs it.
FORGED = f"Accepted publickey for demo from 6.6.6.6 port 1 ssh2: ED25519 {FINGERPRINT}"
FORGED_AS_LOGGED = FORGED.split(":", 1)[0]


def test_accepted_key_as_sshd_e_writes_it() -> None:
    attempt = parse_auth_line(ACCEPTED)
    assert attempt is not None
    assert (attempt.user, attempt.source, attempt.port, attempt.accepted) == (
        "tjexp1",
        "127.0.0.1",
        34306,
        True,
    )
    assert (attempt.key_type, attempt.fingerprint) == ("ED25519", FINGERPRINT)


def test_refused_key_over_ipv6_of_an_invalid_user() -> None:
    attempt = parse_auth_line(FAILED.replace("tjexp1 from 10.1.2.3", "invalid user eve from ::1"))
    assert attempt is not None
    assert (attempt.user, attempt.source, attempt.accepted) == ("eve", "::1", False)
    assert attempt.fingerprint == "SHA256:/tpUqYlzC8Z0DqMrajqUzD8+a+gxQKLEd19cBZ4eTOY"


@pytest.mark.parametrize(
    "name",
    [
        FORGED,
        FORGED_AS_LOGGED,
        "x from 6.6.6.6 port 1 ssh2",
        "demo from 6.6.6.6 port 1 ssh2: ED25519 " + FINGERPRINT,
        "demo\x0bAccepted publickey for demo",
    ],
)
def test_hostile_user_names_inside_sshds_messages_are_not_authentications(name: str) -> None:
    # Every message sshd writes with a client's user name in it, as sshd writes it.
    logged = name.split(":", 1)[0]
    for message in [
        f"Invalid user {logged} from 127.0.0.1 port 40000",
        f"Failed none for invalid user {logged} from 127.0.0.1 port 40000 ssh2",
        f"Failed publickey for invalid user {logged} from 127.0.0.1 port 40000 ssh2: ED25519 "
        + FINGERPRINT,
        f"Connection closed by invalid user {logged} 127.0.0.1 port 40000 [preauth]",
        f"Disconnected from invalid user {logged} 127.0.0.1 port 40000 [preauth]",
    ]:
        for line in split_lines(message + "\r\n"):
            attempt = parse_auth_line(line)
            assert attempt is None or attempt.user not in {"demo", "x"}, line


def test_a_whole_forged_line_still_needs_what_no_name_carries() -> None:
    # A newline in a name (a custom client can send one) puts the name's text on a line of its
    # own; the text before ':' is all sshd keeps, so the key part is missing.
    lines = split_lines(f"Invalid user x\n{FORGED_AS_LOGGED}\ny from 127.0.0.1 port 5\r\n")
    assert [parse_auth_line(line) for line in lines] == [None, None, None]


@pytest.mark.parametrize(
    "line",
    [
        "Accepted key ED25519 SHA256:abc found at /etc/cloche/ssh/authorized_keys/a:2",
        "Invalid user nosuchuserx from 127.0.0.1 port 33574",
        "Connection closed by authenticating user a 127.0.0.1 port 1 [preauth]",
        "Accepted password for demo from 6.6.6.6 port 1 ssh2",
        "Accepted publickey for demo from 6.6.6.6 port 1 ssh2",
        "Failed password for invalid user eve from ::1 port 5 ssh2",
        f"sshd[812]: {FAILED}",
        f" {FAILED}",
        f"{FAILED} [preauth]",
        f"{ACCEPTED} from 127.0.0.1 port 5 ssh2",
        ACCEPTED.replace("tjexp1", "tj\u2028exp1"),
        ACCEPTED.replace("tjexp1", "tj\x85exp1"),
        "",
    ],
)
def test_other_lines_are_not_authentications(line: str) -> None:
    assert parse_auth_line(line) is None


def test_sshd_message_drops_the_carriage_return_and_refuses_what_sshd_escapes() -> None:
    assert sshd_message("Server listening on :: port 22.\r") == "Server listening on :: port 22."
    assert sshd_message("Invalid user a\\013b from 127.0.0.1 port 1") is not None
    for raw in ["\x0b", "\x1c", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\ufffd", "é"]:
        assert sshd_message(f"Invalid user a{raw}b from 127.0.0.1 port 1") is None


def test_log_lines_split_at_newline_only() -> None:
    text = "a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i\r\nnext\r\n"
    assert split_lines(text) == ["a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i\r", "next\r"]
    assert split_lines("") == []
    assert split_lines("partial") == ["partial"]


def test_new_file_lines_keep_hostile_bytes_inside_their_line(tmp_path: Path) -> None:
    log, offset = tmp_path / "sshd.log", tmp_path / "sshd.offset"
    log.write_bytes(b"Invalid user a\x0bb\xe2\x80\xa8c\xff from 127.0.0.1 port 1\r\nhalf")
    (line,) = new_file_lines(log, offset)
    assert line == "Invalid user a\x0bb\u2028c\ufffd from 127.0.0.1 port 1\r"
    assert sshd_message(line) is None and parse_auth_line(line) is None
    with log.open("ab") as stream:
        stream.write(b" a line\r\n")
    assert new_file_lines(log, offset) == ["half a line\r"]


def test_command_output_read_verbatim_keeps_carriage_returns_and_survives_bad_bytes() -> None:
    result = run(["printf", "a\\rb\\013c\\377\\n"], verbatim=True)
    assert split_lines(result.stdout) == ["a\rb\x0bc\ufffd"]
