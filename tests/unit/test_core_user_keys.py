"""core.users: a key is parsed whole, and several keys are added all or none, pushed once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core import users
from cloche.model.errors import ClocheError, Invalid
from cloche.model.sshkeys import parse_public_key
from tests.unit.fakes import FakeContext, add_user, events, fake_context, public_key
from tests.unit.test_core_users import _key_pushes, create_env


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        yield context


def test_add_keys_adds_each_and_pushes_once(context: FakeContext) -> None:
    add_user(context, "alice", keys=("ed25519",))
    create_env(context, "alice", "web")
    context.fake.calls.clear()

    added, _ = users.add_keys(
        context, "admin", "alice", [public_key("ecdsa"), public_key("rsa3072")]
    )

    lines = [parse_public_key(public_key(name)).line for name in ("ed25519", "ecdsa", "rsa3072")]
    assert [key.fingerprint for key in added] == [
        parse_public_key(public_key(name)).fingerprint for name in ("ecdsa", "rsa3072")
    ]
    assert _key_pushes(context) == {"web": "".join(f"{line}\n" for line in lines).encode()}
    [event] = events(context, "added keys of user")
    assert event.outcome == "succeeded"
    assert len(event.details["fingerprints"]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (("ecdsa", "rsa1024"), "^Key 2 of 2: This RSA key has 1024 bits"),
        (("ecdsa", "ecdsa"), "^Key 2 of 2 repeats an earlier one"),
        (("ecdsa", "ed25519"), "already has the key"),
    ],
)
def test_add_keys_is_all_or_nothing(
    context: FakeContext, keys: tuple[str, ...], message: str
) -> None:
    add_user(context, "alice", keys=("ed25519",))
    with pytest.raises(ClocheError, match=message):
        users.add_keys(context, "admin", "alice", [public_key(name) for name in keys])
    assert [key.comment for key in context.database.users.list_keys("alice")] == [
        parse_public_key(public_key("ed25519")).comment
    ]


def test_a_key_with_a_line_break_never_reaches_the_user(context: FakeContext) -> None:
    add_user(context, "alice", keys=("ed25519",))
    create_env(context, "alice", "web")
    poisoned = f"{public_key('ecdsa')} me\n{public_key('rsa3072')}"
    with pytest.raises(Invalid, match="spans several lines"):
        users.add_key(context, "admin", "alice", poisoned)
    with pytest.raises(Invalid, match="spans several lines"):
        users.add_keys(context, "admin", "alice", [poisoned])
    # Every later render still works: the user was not poisoned.
    users.add_key(context, "admin", "alice", public_key("ecdsa"))
    assert len(context.database.users.list_keys("alice")) == 2
