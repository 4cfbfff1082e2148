"""The values the API fuzz sends: plausible ones the seeded world holds, and hostile ones.

Plausible values are keyed by parameter or field name (a new route's new name needs some; a test
says so). Hostile values come in pools by where they travel: path and query parameters meet
every name-like one, body fields those near their schema's type, and headers a few of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from tests.unit.fakes import public_key
from tests.unit.fuzz_world import REPOSITORY, REPOSITORY_URL, ROUTE, SNAPSHOT

ACTOR_HEADER = "X-Test-Admin"


class Known(enum.Enum):
    """An id only the seeded world knows; looked up when the request is sent."""

    FINGERPRINT = "fingerprint"
    BACKUP_ID = "backup_id"
    OPERATION_ID = "operation_id"


class Raw(str):
    """A path segment sent exactly as written (not percent-encoded), such as '%2F' or '..'."""

    __slots__ = ()


class Absent(enum.Enum):
    """A field or parameter left out of the request."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT

# What the seeded world holds (fuzz_world.py), by parameter or field name.
PLAUSIBLE: dict[str, tuple[Any, ...]] = {
    "name": ("alice", "bob", "carol"),
    "user": ("alice", "bob"),
    "ssh_keys": ([public_key("rsa3072")], [public_key("ed25519"), public_key("ecdsa")]),
    "public_key": (public_key("rsa3072"), public_key("ed25519")),
    "public_keys": ([public_key("rsa3072")], [public_key("rsa3072"), public_key("ed25519")]),
    "role": ("member", "admin"),
    "max_envs": (3, 0),
    "cpu": (1, 2),
    "memory": ("1GiB", "512MiB"),
    "disk": ("10GiB", "600MiB"),
    "processes": (None, 64),
    "image": (None, "debian-12"),
    "profile": ("standard", "strict"),
    "command": (["true"], ["sh", "-c", "echo hello"]),
    "stdin_base64": ("", "aGVsbG8K"),
    "root": (False, True),
    "fingerprint": (Known.FINGERPRINT,),
    "known_hosts_path": ("/home/alice/.ssh/known_hosts",),
    "identity_file": (None, "/home/alice/.ssh/work_key"),
    "host": (None, "cloche.example.test"),
    "port": (None, 2222),
    "purge": (False, True),
    "operation_id": (Known.OPERATION_ID,),
    "limit": (10, 1),
    "url": (REPOSITORY_URL, "/srv/backups", "sftp:backup@10.0.0.6:/srv/cloche"),
    "password": ("hunter2", None),
    "s3_access_key": (None, "access"),
    "s3_secret_key": (None, "secret"),
    "sftp_command": (None, "ssh backup@10.0.0.6 -s sftp"),
    "all": (False, True),
    "repository": (None, "local", REPOSITORY),
    "read_data": (False, True),
    "backup_id": (Known.BACKUP_ID,),
    "as_new": (None, "copy"),
    "in_place": (False, True),
    "label": (None, "nightly", SNAPSHOT),
    "snapshot": (SNAPSHOT,),
    "quarter_hourly": (4, 0),
    "hourly": (24, None),
    "daily": (7, None),
    "weekly": (4, None),
    "monthly": (12, None),
    "reset": (False, True),
    "egress": ("open", "none", "allow:10.0.0.0/8,140.82.112.0/20"),
    "host_account": (None, "alice", "daemon"),
    "max_egress": (None, "allow", "open"),
    "scopes": (None, ["read"], ["read", "exec"]),
    "environments": (None, ["web"]),
    "expires": (None, "30d", "12h"),
    "token_id": ("tk_000000000000",),
    "spec": (ROUTE, "tcp://2222:22", "http://api.alice.example.test:8080/v1@auth:dev"),
    "address": ("203.0.113.7", "2001:db8::7", "10.120.0.1/16"),
    ACTOR_HEADER: ("carol",),
}

_KEY = public_key("ed25519")
# Hostile values only one field can meet: a valid key with a bad comment, say.
HOSTILE_BY_FIELD: dict[str, tuple[Any, ...]] = {
    "public_key": (
        f"{_KEY} \ud800",
        f"{_KEY} a\x00b",
        f"{_KEY}\n{_KEY}",
        f"{_KEY} me\n{_KEY}",
        f"{_KEY} me\u2028{_KEY}",
        f"{_KEY} {'c' * 5000}",
        f"{_KEY} {'c' * 20_000}",
    ),
    "ssh_keys": ([f"{_KEY} \ud800"], [_KEY, _KEY], []),
    "public_keys": ([f"{_KEY} me\n{_KEY}"], [_KEY, _KEY], [], [_KEY] * 101),
    "command": (["\ud800"], ["a\x00b"], [""], ["true"] * 5000),
    "fingerprint": ("SHA256:\ud800", "SHA256:" + "A" * 5000),
    "host_account": ("a\nb", "root\x00", "A" * 5000),
}

# "name" names a user, an environment or a repository, by where it travels: a new one where
# the route makes one, else one the world holds.
NEW_NAMES: dict[str, tuple[str, ...]] = {
    "/v1/users": ("carol", "alice"),
    "/v1/environments": ("fresh", "web"),
    "/v1/backups/repositories": ("spare", REPOSITORY),
}
NAMES_BY_PATH: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/v1/backups/repositories", (REPOSITORY, "spare")),
    ("/v1/environments", ("web", "db", "fresh")),
    ("/v1/backups", ("web", "db")),
)

# Names and ids: every path and query parameter meets these in the sweep.
HOSTILE_TEXT: tuple[str, ...] = (
    "",
    " ",
    "..",
    "a" * 5000,
    "alice\n",
    "ünïcødé",
    "🦀",
    "a\x00b",
    "\ud800",
    # Line breaks and control characters that would start a directive of a generated file.
    "alice\r",
    "web\r\nHost *",
    "a\u2028b",
    "a\u2029b",
    "a\x85b",
    "a\x0bb",
    "a\x1b[2Jb",
    "a\x7f",
    "h.example\nProxyCommand touch /tmp/pwned",
    "a/b",
    "%2F",
    "tmpl-x",
    "root",
    "-1",
    "99999999999999999999",
    "9" * 5000,
    "a" * 50_000,
)
# Values that a field parses (sizes, base64, route specs, egress): body text fields meet them too.
HOSTILE_VALUES: tuple[str, ...] = (
    "1e20TiB",
    "100000000000000000000TiB",
    "9223372036854775808B",
    "-1GiB",
    "1.5GiB",
    "0",
    "abc",
    "!!!!",
    "====",
    "tcp://99999999999999999999:22",
    "https://a.example.test:99999999999999999999",
    "allow:999.0.0.0/99",
    "9" * 5000 + "GiB",
)
# Only the random mixes draw these.
MORE_HOSTILE_TEXT: tuple[str, ...] = (".", "ALICE", "名前", "a b", "../../etc/passwd", "-", "\t")
HOSTILE_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    99999999999999999999,
    10**40,
    1.5,
    1e20,
    -0.0,
)
HOSTILE_JSON: tuple[Any, ...] = (None, True, [], {}, ["a", 1], {"a": {"b": None}})
# Path segments that mean something to a URL parser; the others are percent-encoded.
HOSTILE_SEGMENTS: tuple[Raw, ...] = tuple(
    Raw(text) for text in ("%2F", "..", ".", "%ZZ", "a%00b", "%C3%28", "a%2Fb", "%0A")
)
HOSTILE_HEADERS: tuple[Any, ...] = ("", " ", "x" * 8000, "ünï".encode(), "a\tb", "\x7f")
MALFORMED_BODIES: tuple[bytes, ...] = (
    b"",
    b"{",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe",
    b"NaN",
    b'{"cpu": ' + b"9" * 5000 + b"}",
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    b'{"name": "' + b"a" * 900_000 + b'"}',
)
EXTRA_FIELD = "unexpected_field"
# A well-formed name that nothing in the seeded world has.
MISSING = "nobody-here"


def _kinds(schema: Mapping[str, Any]) -> set[str]:
    options = schema.get("anyOf", [schema])
    return {str(option.get("type", "string")) for option in options} - {"null"}


def hostile(location: str, schema: Mapping[str, Any]) -> tuple[Any, ...]:
    """The sweep's hostile values for one parameter or field (bodies: those near its type); headers
    meet theirs about a missing target (sweep)."""
    if location == "header":
        return ()
    if location in ("path", "query"):
        return HOSTILE_TEXT + HOSTILE_SEGMENTS
    kinds = _kinds(schema)
    if kinds & {"string", "array"}:
        return (*HOSTILE_TEXT, *HOSTILE_VALUES, 2**64, 1.5, *HOSTILE_JSON, [*HOSTILE_TEXT, 1])
    return (*HOSTILE_NUMBERS, "", "1", "99999999999999999999", *HOSTILE_JSON)


def more_hostile(location: str) -> tuple[Any, ...]:
    """The random mixes' hostile values: every one of every kind."""
    if location == "header":
        return HOSTILE_HEADERS
    texts = (*HOSTILE_TEXT, *HOSTILE_VALUES, *MORE_HOSTILE_TEXT)
    if location in ("path", "query"):
        return (*texts, *HOSTILE_SEGMENTS, *(str(number) for number in HOSTILE_NUMBERS))
    return (*texts, *HOSTILE_NUMBERS, *HOSTILE_JSON)
