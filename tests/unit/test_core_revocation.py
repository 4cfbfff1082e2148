"""Revocation on the fakes: shrunk access ends jump sessions; pushes reach every environment."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from cloche.core import environments, key_push, reconcile, snapshots, ssh_access, users
from cloche.model.errors import HostFailure
from cloche.model.instances import ExecResult
from cloche.model.sshkeys import parse_public_key
from tests.unit.fakes import (
    FakeContext,
    FakeJumpAccounts,
    add_user,
    events,
    fake_context,
    new_env,
    public_key,
    wait_operation,
)

ED25519 = parse_public_key(public_key("ed25519"))
ECDSA = parse_public_key(public_key("ecdsa"))


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        yield context


def _accounts(context: FakeContext) -> FakeJumpAccounts:
    return cast(FakeJumpAccounts, context.host.jump_accounts)


def _create(context: FakeContext, name: str, user: str = "alice") -> None:
    operation = environments.request_create(context, "admin", new_env(name, user=user))
    assert wait_operation(context, operation).status == "succeeded"


def _act(context: FakeContext, name: str, action: str) -> None:
    operation = environments.request_action(context, "admin", "alice", name, action)
    assert wait_operation(context, operation).status == "succeeded"


def _pushed_keys(context: FakeContext) -> dict[str, bytes]:
    """The authorized_keys each environment was given (stdin of the account script), by name."""
    return {
        call.args[0]: call.kwargs["stdin"]
        for call in context.fake.calls_of("exec")
        if call.args[1][:2] == ["sh", "-c"] and "authorized_keys" in call.args[1][2]
    }


def _opened(context: FakeContext, user: str = "alice", sessions: int = 2) -> None:
    _accounts(context).sessions[user] = sessions
    _accounts(context).ended.clear()


# Jump sessions end when access shrinks ---------------------------------------------------------


def test_removing_a_key_ends_the_accounts_sessions_and_audits_it(context: FakeContext) -> None:
    add_user(context, "alice", keys=("ed25519", "ecdsa"))
    add_user(context, "bob")
    _create(context, "web")
    _opened(context)
    _accounts(context).sessions["bob"] = 1

    users.remove_key(context, "admin", "alice", ED25519.fingerprint)

    assert _accounts(context).ended == ["alice"]
    assert _accounts(context).sessions == {"bob": 1}  # positive control: bob's stay
    ended = events(context, "ended jump sessions of user")
    assert [(e.actor, e.target, e.details["sessions"]) for e in ended] == [("admin", "alice", 2)]


def test_adding_a_key_or_an_environment_ends_nothing(context: FakeContext) -> None:
    add_user(context, "alice")
    _opened(context)

    users.add_key(context, "admin", "alice", public_key("ecdsa"))
    _create(context, "web")

    assert _accounts(context).ended == []
    assert events(context, "ended jump sessions of user") == []


def test_removing_an_environment_ends_the_sessions(context: FakeContext) -> None:
    add_user(context, "alice")
    _create(context, "web")
    _create(context, "db")
    _opened(context)

    operation = environments.request_remove(context, "admin", "alice", "web")
    assert wait_operation(context, operation).status == "succeeded"

    assert _accounts(context).ended == ["alice"]
    assert len(_accounts(context).allowed["alice"]) == 1
    assert [e.details["why"] for e in events(context, "ended jump sessions of user")] == [
        "its access shrank"
    ]


def test_stopping_an_environment_keeps_its_forward_and_the_sessions(context: FakeContext) -> None:
    # A stopped environment keeps its address (nobody else gets it): nothing shrank.
    add_user(context, "alice")
    _create(context, "web")
    _opened(context)

    _act(context, "web", "stop")

    assert _accounts(context).ended == []


def test_removing_the_user_empties_the_keys_then_ends_sessions_then_the_account(
    context: FakeContext,
) -> None:
    add_user(context, "alice")
    _opened(context)
    order: list[str] = []
    accounts = _accounts(context)
    write_keys, end_sessions = accounts.write_keys, accounts.end_sessions

    def writing(user: str, text: str) -> None:
        order.append(f"keys {len(text.splitlines())} line(s)")
        write_keys(user, text)

    def ending(user: str) -> int:
        order.append("end sessions")
        return end_sessions(user)

    cast(Any, accounts).write_keys = writing
    cast(Any, accounts).end_sessions = ending

    operation = users.request_remove(context, "admin", "alice", purge=False)
    assert wait_operation(context, operation).status == "succeeded"

    assert order == ["keys 1 line(s)", "end sessions"]  # the header only: no key
    assert accounts.removed == ["alice"]
    assert [e.details["why"] for e in events(context, "ended jump sessions of user")] == [
        "the user was removed"
    ]


def test_two_converges_of_one_user_never_interleave(context: FakeContext) -> None:
    add_user(context, "alice", keys=("ed25519", "ecdsa"))
    accounts = _accounts(context)
    inside = threading.Event()
    write_keys = accounts.write_keys
    overlaps: list[bool] = []
    busy = threading.Lock()

    def slow_write(user: str, text: str) -> None:
        overlaps.append(not busy.acquire(blocking=False))
        inside.set()
        time.sleep(0.05)
        write_keys(user, text)
        busy.release()

    cast(Any, accounts).write_keys = slow_write
    threads = [
        threading.Thread(target=ssh_access.converge_user, args=(context, "alice")) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [False, False, False]


# Pushes into environments ----------------------------------------------------------------------


def test_a_stopped_environment_waits_and_the_others_are_still_pushed(
    context: FakeContext,
) -> None:
    add_user(context, "alice")
    for name in ("a", "b", "c"):
        _create(context, name)
    _act(context, "a", "stop")
    context.fake.calls.clear()

    _, push = users.add_key(context, "admin", "alice", public_key("ecdsa"))

    assert (push.pushed, push.waiting, dict(push.failed)) == (("b", "c"), ("a",), {})
    assert set(_pushed_keys(context)) == {"b", "c"}


def test_a_failed_push_is_reported_and_does_not_stop_the_others(context: FakeContext) -> None:
    add_user(context, "alice")
    for name in ("a", "b", "c"):
        _create(context, name)

    def broken_b(project: str, name: str, argv: list[str], options: dict[str, Any]) -> Any:
        return ExecResult(1, b"", b"no space left") if name == "b" else None

    context.fake.exec_handler = broken_b

    push = users.remove_key(context, "admin", "alice", ED25519.fingerprint)

    assert push.pushed == ("a", "c")
    assert list(push.failed) == ["b"]
    assert "no space left" in push.failed["b"]
    # The key is gone all the same, and the failure is audited with where it did land.
    assert users.show_user(context, "alice").keys == ()
    [failed] = events(context, "pushed keys of user")
    assert failed.outcome == "failed"
    assert failed.details["pushed"] == ["a", "c"]


def test_every_push_has_a_deadline(context: FakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    add_user(context, "alice")
    _create(context, "stuck")
    _create(context, "fine")
    release = threading.Event()

    def hang_stuck(project: str, name: str, argv: list[str], options: dict[str, Any]) -> Any:
        if name == "stuck":
            release.wait(10)  # an LXD that never answers
        return None

    context.fake.exec_handler = hang_stuck
    monkeypatch.setattr(key_push, "GRACE_SECONDS", 0.0)
    try:
        started = time.monotonic()
        push = key_push.push_keys(context, "alice", "admin", deadline_seconds=0.3)
        took = time.monotonic() - started
    finally:
        release.set()

    assert took < 2
    assert push.pushed == ("fine",)
    assert push.failed == {"stuck": "it did not take the keys within 0.3 s"}


def test_lxd_not_answering_fails_every_push_in_one_sentence(context: FakeContext) -> None:
    add_user(context, "alice")
    _create(context, "web")
    context.fake.fail["states"] = HostFailure("LXD does not answer; start it.")

    push = key_push.push_keys(context, "alice", "admin")

    assert push.failed == {"web": "LXD does not answer; start it."}


# Stopped environments get the current keys when they start ------------------------------------


@pytest.mark.parametrize("action", ["start", "restart"])
def test_a_key_added_while_stopped_reaches_the_environment_at_start(
    context: FakeContext, action: str
) -> None:
    add_user(context, "alice")
    _create(context, "web")
    _act(context, "web", "stop")
    _, push = users.add_key(context, "admin", "alice", public_key("ecdsa"))
    assert push.waiting == ("web",)
    context.fake.calls.clear()

    _act(context, "web", action)

    assert _pushed_keys(context) == {"web": f"{ED25519.line}\n{ECDSA.line}\n".encode()}


def test_the_boot_pass_pushes_current_keys_into_what_it_starts(context: FakeContext) -> None:
    add_user(context, "alice")
    _create(context, "web")
    _create(context, "db")
    _act(context, "db", "stop")
    # LXD stopped "web" under cloche (a reboot): the record still says Running.
    context.user_instances("alice").stop("web")
    context.database.users.add_key("alice", ECDSA.fingerprint, ECDSA.line, ECDSA.comment)
    context.fake.calls.clear()

    reconcile.reconcile_once(context, startup=True)

    # "web" started and took today's keys; "db" was left stopped by its owner and waits.
    assert _pushed_keys(context) == {"web": f"{ED25519.line}\n{ECDSA.line}\n".encode()}


def test_a_restore_in_place_brings_todays_keys(context: FakeContext) -> None:
    add_user(context, "alice")
    _create(context, "web")
    snapshots.take_snapshot(context, "admin", "alice", "web", "before")
    users.add_key(context, "admin", "alice", public_key("ecdsa"))
    context.fake.calls.clear()

    operation = snapshots.request_restore(context, "admin", "alice", "web", "before")
    assert wait_operation(context, operation).status == "succeeded"

    assert _pushed_keys(context) == {"web": f"{ED25519.line}\n{ECDSA.line}\n".encode()}
