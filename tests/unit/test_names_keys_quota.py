"""Name rules, SSH public key checks and quota arithmetic."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from cloche.model.errors import Invalid, QuotaExceeded
from cloche.model.names import (
    check_environment_name,
    check_image_alias,
    check_user_name,
    parse_address,
)
from cloche.model.quota import Quota, Usage, check_fits
from cloche.model.sshkeys import MAX_KEYS, MAX_LINE, parse_public_key, parse_public_keys

DATA = Path(__file__).parent / "data"
GIB = 1024**3


@pytest.mark.parametrize("name", ["a", "alice", "dev-1", "x" * 40, "a1-b2"])
def test_valid_environment_names(name: str) -> None:
    assert check_environment_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Web", "is not valid"),
        ("", "is not valid"),
        ("x" * 41, "is not valid"),
        ("../x", "is not valid"),
        ("a;rm -rf /", "is not valid"),
        ("a$(id)", "is not valid"),
        ("a b", "is not valid"),
        ("1abc", "is not valid"),
        ("abc-", "is not valid"),
        ("tmpl-base", "reserved"),
        ("web\n", "is not valid"),
    ],
)
def test_invalid_environment_names_state_the_rule(name: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason) as caught:
        check_environment_name(name)
    if reason == "is not valid":
        assert "1 to 40 characters: a lowercase letter" in str(caught.value)


@pytest.mark.parametrize("name", ["Alice", "root", "a" * 31, "bob/x", "-x", "alice\n"])
def test_invalid_user_names(name: str) -> None:
    with pytest.raises(Invalid):
        check_user_name(name)


@pytest.mark.parametrize("alias", ["cloche/bookworm", "debian-12", "ubuntu/24.04", "a:b_c"])
def test_image_aliases(alias: str) -> None:
    assert check_image_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "/x", "a b", "x\n", "\ud800", "é", "a" * 201])
def test_invalid_image_aliases_state_the_rule(alias: str) -> None:
    with pytest.raises(Invalid, match="is not a valid image alias; use 1 to 200 characters"):
        check_image_alias(alias)


def test_addresses() -> None:
    assert parse_address("alice/web") == ("alice", "web")
    assert parse_address("web", default_user="bob") == ("bob", "web")
    with pytest.raises(Invalid, match="write USER/NAME"):
        parse_address("web")
    with pytest.raises(Invalid, match=r"Environment name '\.\./x'"):
        parse_address("alice/../x")


@pytest.mark.parametrize("file", ["ed25519.pub", "ecdsa.pub", "rsa3072.pub"])
def test_good_keys_and_their_fingerprints_match_ssh_keygen(file: str) -> None:
    text = (DATA / file).read_text()
    key = parse_public_key(text)
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(DATA / file)], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert key.fingerprint == listed
    assert key.line.split()[:2] == text.split()[:2]


def test_weak_and_wrong_keys_are_refused_clearly() -> None:
    with pytest.raises(Invalid, match=r"1024 bits, under the minimum of 2048"):
        parse_public_key((DATA / "rsa1024.pub").read_text())
    with pytest.raises(Invalid, match="DSA keys are too weak"):
        parse_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP== old@host")
    with pytest.raises(Invalid, match="This is a private key"):
        parse_public_key("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    with pytest.raises(Invalid, match="not an OpenSSH public key"):
        parse_public_key("hello")
    with pytest.raises(Invalid, match="corrupt"):
        parse_public_key("ssh-ed25519 AAAA!!notbase64")
    with pytest.raises(Invalid, match="holds another key type"):
        ed25519_blob = (DATA / "ed25519.pub").read_text().split()[1]
        parse_public_key(f"ssh-rsa {ed25519_blob}")
    with pytest.raises(Invalid, match="empty"):
        parse_public_key("  \n")


@pytest.mark.parametrize(
    "comment", ["\ud800", "a\x00b", "tab\there", "esc\x1b[2J", "nbsp\u00a0x", "rtl\u202ex"]
)
def test_a_key_comment_must_be_printable_text(comment: str) -> None:
    line = (DATA / "ed25519.pub").read_text().split()[:2]
    assert parse_public_key(f"{line[0]} {line[1]} josé@laptop").comment == "josé@laptop"
    with pytest.raises(Invalid, match="holds a control character") as caught:
        parse_public_key(f"{line[0]} {line[1]} {comment}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "separator", ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029"]
)
def test_a_key_is_parsed_whole_and_a_line_break_anywhere_is_refused(separator: str) -> None:
    key_type, blob = (DATA / "ed25519.pub").read_text().split()[:2]
    other = (DATA / "ecdsa.pub").read_text().strip()
    # Each would otherwise become a second authorized_keys line (or one key with the other
    # key as its comment).
    for text in (
        f"{key_type} {blob} two{separator}{other}",
        f"{key_type} {blob}{separator}{other}",
        f"{key_type}{separator}{blob}",
    ):
        with pytest.raises(Invalid, match="spans several lines; give one key per line"):
            parse_public_key(text)
    assert parse_public_key(f"  {key_type} {blob} me\n").line == f"{key_type} {blob} me"


def test_an_overlong_key_line_is_refused() -> None:
    line = (DATA / "ed25519.pub").read_text().strip()
    with pytest.raises(Invalid, match="over 16384 characters"):
        parse_public_key(f"{line} {'c' * MAX_LINE}")


def test_a_key_file_is_taken_whole_or_refused_naming_its_line() -> None:
    ed25519, ecdsa = (DATA / "ed25519.pub").read_text(), (DATA / "ecdsa.pub").read_text()
    keys = parse_public_keys(f"# laptop\n{ed25519}\n\n{ecdsa}", "keys.pub")
    assert [key.key_type for key in keys] == ["ssh-ed25519", "ecdsa-sha2-nistp256"]
    rsa1024 = (DATA / "rsa1024.pub").read_text()
    with pytest.raises(Invalid, match=r"^keys.pub, line 2: This RSA key has 1024 bits"):
        parse_public_keys(f"{ed25519}{rsa1024}", "keys.pub")
    with pytest.raises(Invalid, match=r"^keys.pub, line 3 repeats the key of line 1; remove"):
        parse_public_keys(f"{ed25519}{ecdsa}{ed25519}", "keys.pub")
    with pytest.raises(Invalid, match="holds no public key"):
        parse_public_keys("# nothing\n\n", "keys.pub")
    with pytest.raises(Invalid, match=f"more than {MAX_KEYS} keys"):
        parse_public_keys("".join(_ed25519(n) for n in range(MAX_KEYS + 1)), "keys.pub")


def _ed25519(seed: int) -> str:
    """A well-formed ed25519 public key line, distinct per seed."""
    field = [b"ssh-ed25519", seed.to_bytes(32, "big")]
    blob = b"".join(len(part).to_bytes(4, "big") + part for part in field)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} k{seed}\n"


QUOTA = Quota(max_envs=2, cpu=4, memory_bytes=8 * GIB, disk_bytes=40 * GIB)
SMALL = Usage(cpu=1, memory_bytes=1 * GIB, disk_bytes=10 * GIB)


def test_quota_allows_what_fits() -> None:
    check_fits("alice", QUOTA, [SMALL], SMALL, new=True)
    check_fits("alice", QUOTA, [SMALL], Usage(3, 7 * GIB, 30 * GIB), new=False)


def test_quota_counts_environments() -> None:
    with pytest.raises(QuotaExceeded, match="already has 2 of 2 allowed environments"):
        check_fits("alice", QUOTA, [SMALL, SMALL], SMALL, new=True)


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (Usage(4, GIB, GIB), r"5 CPUs in all, over the quota of 4"),
        (Usage(1, 8 * GIB, GIB), r"9GiB memory in all, over the quota of 8GiB"),
        (Usage(1, GIB, 31 * GIB), r"41GiB disk in all, over the quota of 40GiB"),
    ],
)
def test_quota_names_the_limit(requested: Usage, message: str) -> None:
    with pytest.raises(QuotaExceeded, match=message):
        check_fits("alice", QUOTA, [SMALL], requested, new=True)
