"""core.users against the fakes: add (nothing half-made), uid ranges, keys, quotas, remove."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core import environments, users
from cloche.model.commands import NewUser, QuotaChanges
from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound
from cloche.model.sshkeys import parse_public_key
from cloche.render.image import image_alias
from cloche.render.instance import template_name
from tests.unit.fakes import (
    GIB,
    FakeContext,
    add_user,
    events,
    fake_context,
    new_env,
    public_key,
    wait_operation,
)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        yield context


def new_user(name: str = "alice", keys: tuple[str, ...] = ("ed25519",)) -> NewUser:
    return NewUser(
        name=name,
        ssh_keys=tuple(public_key(key) for key in keys),
        role="member",
        max_envs=2,
        cpu=4,
        memory_bytes=8 * GIB,
        disk_bytes=50 * GIB,
    )


def create_env(context: FakeContext, user: str, name: str) -> None:
    operation_id = environments.request_create(context, "admin", new_env(name, user=user))
    assert wait_operation(context, operation_id).status == "succeeded"


# Add -------------------------------------------------------------------------------------------


def test_add_creates_the_project_profiles_and_record(context: FakeContext) -> None:
    shown = users.add_user(context, "admin", new_user())

    record = context.database.users.get("alice")
    assert record.uid_base > 0
    assert record.uid_size >= 65536
    assert shown.record.uid_base == record.uid_base
    assert shown.project == "cloche-alice"
    assert shown.key_count == 1
    project = context.fake.projects["cloche-alice"]
    assert project.config["user.cloche.owner"] == "alice"
    assert project.config["restricted"] == "true"
    profiles = context.fake.profiles["cloche-alice"]
    assert set(profiles) == {"standard", "docker", "strict"}
    for profile in profiles.values():
        assert profile["config"]["security.idmap.base"] == str(record.uid_base)
        assert profile["config"]["security.idmap.size"] == str(record.uid_size)
    assert context.fake.methods() == ["ensure_project", "ensure_profiles"]
    [key] = context.database.users.list_keys("alice")
    assert key.fingerprint == parse_public_key(public_key("ed25519")).fingerprint
    assert [(e.action, e.target, e.outcome) for e in events(context)] == [
        ("added user", "alice", "succeeded")
    ]


def test_two_users_get_ranges_that_do_not_overlap(context: FakeContext) -> None:
    users.add_user(context, "admin", new_user("alice"))
    users.add_user(context, "admin", new_user("bob"))

    alice, bob = context.database.users.get("alice"), context.database.users.get("bob")
    assert alice.uid_end <= bob.uid_base or bob.uid_end <= alice.uid_base
    alice_base = context.fake.profiles["cloche-alice"]["standard"]["config"]["security.idmap.base"]
    bob_base = context.fake.profiles["cloche-bob"]["standard"]["config"]["security.idmap.base"]
    assert (alice_base, bob_base) == (str(alice.uid_base), str(bob.uid_base))


def test_failing_ensure_project_leaves_no_user(context: FakeContext) -> None:
    context.fake.fail["ensure_project"] = HostFailure("LXD refused the project; check LXD.")

    with pytest.raises(HostFailure, match="LXD refused the project"):
        users.add_user(context, "admin", new_user())

    with pytest.raises(NotFound):
        context.database.users.get("alice")
    assert context.fake.projects == {}
    [event] = events(context)
    assert (event.action, event.outcome) == ("added user", "failed")
    assert "LXD refused the project" in str(event.details["error"])


def test_failing_ensure_profiles_leaves_no_user_and_no_project(context: FakeContext) -> None:
    context.fake.fail["ensure_profiles"] = HostFailure("LXD refused a profile; check LXD.")

    with pytest.raises(HostFailure, match="LXD refused a profile"):
        users.add_user(context, "admin", new_user())

    with pytest.raises(NotFound):
        context.database.users.get("alice")
    assert context.database.users.list_keys() == []
    assert context.fake.projects == {}
    [event] = events(context)
    assert (event.action, event.outcome) == ("added user", "failed")
    # The name is free again.
    context.fake.fail.clear()
    users.add_user(context, "admin", new_user())
    assert context.database.users.get("alice").name == "alice"


def test_weak_key_is_invalid_and_nothing_is_made(context: FakeContext) -> None:
    with pytest.raises(Invalid, match="1024 bits"):
        users.add_user(context, "admin", new_user(keys=("ed25519", "rsa1024")))

    assert context.database.users.list() == []
    assert context.fake.calls == []
    [event] = events(context)
    assert (event.action, event.outcome) == ("added user", "failed")


def test_duplicate_user_is_a_conflict(context: FakeContext) -> None:
    users.add_user(context, "admin", new_user())
    with pytest.raises(Conflict, match="already exists"):
        users.add_user(context, "admin", new_user())
    # The first user's project is still there.
    assert "cloche-alice" in context.fake.projects


def test_set_quota_failure_restores_the_quotas(context: FakeContext) -> None:
    add_user(context, "alice", cpu=4)
    context.fake.fail["ensure_project"] = HostFailure("LXD refused the limits; check LXD.")

    with pytest.raises(HostFailure):
        users.set_quota(context, "admin", "alice", QuotaChanges(cpu=8))

    assert context.database.users.get("alice").cpu == 4
    assert [e.outcome for e in events(context, "changed quotas of user")] == ["failed"]


def test_set_quota_converges_the_project(context: FakeContext) -> None:
    add_user(context, "alice", cpu=4)
    users.set_quota(context, "admin", "alice", QuotaChanges(cpu=8))
    assert context.database.users.get("alice").cpu == 8
    # The template's CPU comes on top of the user's quota.
    assert context.fake.projects["cloche-alice"].config["limits.cpu"] == "9"


# Remove ----------------------------------------------------------------------------------------


def test_remove_with_environments_and_no_purge_is_a_conflict(context: FakeContext) -> None:
    add_user(context, "alice")
    create_env(context, "alice", "web")

    with pytest.raises(Conflict, match="--purge"):
        users.request_remove(context, "admin", "alice", purge=False)

    assert context.database.users.get("alice").name == "alice"
    assert "web" in context.fake.instance_names("cloche-alice")
    [event] = events(context, "removed user")
    assert event.outcome == "failed"


def test_remove_with_purge_deletes_environments_and_project(context: FakeContext) -> None:
    add_user(context, "alice")
    create_env(context, "alice", "web")
    create_env(context, "alice", "db")

    operation_id = users.request_remove(context, "admin", "alice", purge=True)

    assert wait_operation(context, operation_id).status == "succeeded"
    assert context.database.environments.list() == []
    with pytest.raises(NotFound):
        context.database.users.get("alice")
    assert "cloche-alice" not in context.fake.projects
    assert context.fake.instances.get("cloche-alice", {}) == {}
    deleted = [call.args[0] for call in context.fake.calls_of("delete")]
    template = template_name(image_alias(context.config.image.release))
    assert sorted(deleted) == sorted(["web", "db", template])
    assert [e.outcome for e in events(context, "removed user")] == ["succeeded"]


def test_remove_without_environments_needs_no_purge(context: FakeContext) -> None:
    add_user(context, "alice")
    operation_id = users.request_remove(context, "admin", "alice", purge=False)
    assert wait_operation(context, operation_id).status == "succeeded"
    assert context.database.users.list() == []
    assert context.fake.projects == {}


# Keys ------------------------------------------------------------------------------------------


def _key_pushes(context: FakeContext) -> dict[str, bytes]:
    """The authorized_keys pushed to each environment (stdin of the account script)."""
    return {
        call.args[0]: call.kwargs["stdin"]
        for call in context.fake.calls_of("exec")
        if call.args[1][:2] == ["sh", "-c"] and "authorized_keys" in call.args[1][2]
    }


def test_add_key_and_remove_key_push_keys_to_ready_environments(context: FakeContext) -> None:
    add_user(context, "alice", keys=("ed25519",))
    create_env(context, "alice", "web")
    create_env(context, "alice", "db")
    # A record still being created has no instance to push to: it is skipped.
    context.database.environments.add(
        "alice",
        "new",
        image="cloche/bookworm",
        profile="standard",
        cpu=1,
        memory_bytes=GIB,
        disk_bytes=GIB,
        processes=512,
        status="creating",
    )
    ed25519 = parse_public_key(public_key("ed25519"))
    ecdsa = parse_public_key(public_key("ecdsa"))
    context.fake.calls.clear()

    added, push = users.add_key(context, "admin", "alice", public_key("ecdsa"))

    assert added.fingerprint == ecdsa.fingerprint
    assert (push.pushed, push.waiting, dict(push.failed)) == (("db", "web"), (), {})
    pushed = _key_pushes(context)
    assert set(pushed) == {"web", "db"}
    for stdin in pushed.values():
        assert stdin == f"{ed25519.line}\n{ecdsa.line}\n".encode()
    for call in context.fake.calls_of("exec"):
        assert call.kwargs["user"] is None  # the account script runs as root

    context.fake.calls.clear()
    users.remove_key(context, "admin", "alice", ed25519.fingerprint)

    pushed = _key_pushes(context)
    assert set(pushed) == {"web", "db"}
    for stdin in pushed.values():
        assert stdin == f"{ecdsa.line}\n".encode()
    assert [e.outcome for e in events(context, "added key of user")] == ["succeeded"]
    assert [e.outcome for e in events(context, "removed key of user")] == ["succeeded"]


def test_remove_unknown_key_is_not_found(context: FakeContext) -> None:
    add_user(context, "alice")
    with pytest.raises(NotFound):
        users.remove_key(context, "admin", "alice", "SHA256:nope")
    assert [e.outcome for e in events(context, "removed key of user")] == ["failed"]
