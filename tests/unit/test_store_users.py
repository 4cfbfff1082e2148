"""The user store: users, their SSH keys, and uid range allocation."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cloche.model.errors import Conflict, Invalid, NotFound
from cloche.store.database import Database
from cloche.store.users import DEFAULT_UID_FIRST, DEFAULT_UID_SIZE, UID_END
from tests.unit.storelib import ENVIRONMENT, QUOTAS


def _overlapping(ranges: list[tuple[int, int]]) -> bool:
    ordered = sorted(ranges)
    return any(
        base + size > next_base for (base, size), (next_base, _) in itertools.pairwise(ordered)
    )


def test_add_get_and_list_users(database: Database) -> None:
    alice = database.users.add("alice", role="admin", processes=5000, **QUOTAS)
    bob = database.users.add("bob", **QUOTAS)
    assert alice.role == "admin" and bob.role == "member"
    assert alice.processes == 5000 and bob.processes is None
    assert alice.created_at.tzinfo is not None
    assert database.users.get("alice") == alice
    assert database.users.list() == [alice, bob]


def test_adding_a_user_twice_is_a_conflict(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    with pytest.raises(Conflict, match="alice"):
        database.users.add("alice", **QUOTAS)
    assert len(database.users.list()) == 1


def test_a_missing_user_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound, match="nobody"):
        database.users.get("nobody")
    with pytest.raises(NotFound):
        database.users.delete("nobody")
    with pytest.raises(NotFound):
        database.users.update_quotas("nobody", cpu=1)


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("Alice", {}),
        ("alice", {"role": "root"}),
        ("alice", {"cpu": 0}),
        ("alice", {"memory_bytes": -1}),
        ("alice", {"uid_size": 0}),
    ],
)
def test_invalid_users_are_refused(database: Database, name: str, changes: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        database.users.add(name, **(QUOTAS | changes))
    assert database.users.list() == []


@pytest.mark.parametrize("field", ["max_envs", "cpu", "memory_bytes", "disk_bytes"])
def test_numbers_sqlite_cannot_hold_are_refused_before_the_write(
    database: Database, field: str
) -> None:
    database.users.add("alice", **QUOTAS)
    with pytest.raises(Invalid, match="more than the database can hold"):
        database.users.update_quotas("alice", **{field: 2**63})
    with pytest.raises(Invalid, match="more than the database can hold"):
        database.users.add("bob", **(QUOTAS | {field: 99999999999999999999}))
    assert [user.name for user in database.users.list()] == ["alice"]


def test_update_user_quotas_changes_only_what_is_given(database: Database) -> None:
    before = database.users.add("alice", processes=100, **QUOTAS)
    after = database.users.update_quotas("alice", cpu=8, processes=None)
    assert (after.cpu, after.processes) == (8, None)
    assert (after.max_envs, after.memory_bytes, after.uid_base) == (
        before.max_envs,
        before.memory_bytes,
        before.uid_base,
    )
    assert database.users.get("alice") == after
    with pytest.raises(Invalid):
        database.users.update_quotas("alice", memory_bytes=0)
    assert database.users.get("alice") == after


def test_deleting_a_user_removes_their_keys_but_not_while_they_have_environments(
    database: Database,
) -> None:
    database.users.add("alice", **QUOTAS)
    database.users.add_key("alice", "SHA256:abc", "ssh-ed25519 AAAAkey")
    database.environments.add("alice", "web", **ENVIRONMENT)
    with pytest.raises(Conflict, match="1 environment"):
        database.users.delete("alice")
    database.environments.delete("alice", "web")
    database.users.delete("alice")
    assert database.users.list() == []
    assert database.users.list_keys() == []


# uid ranges -------------------------------------------------------------------------------


def test_uid_ranges_are_allocated_lowest_first_and_never_overlap(database: Database) -> None:
    assert database.users.allocate_uid_base() == DEFAULT_UID_FIRST
    alice = database.users.add("alice", **QUOTAS)
    bob = database.users.add("bob", uid_size=100_000, **QUOTAS)
    carol = database.users.add("carol", **QUOTAS)
    assert alice.uid_base == DEFAULT_UID_FIRST
    assert bob.uid_base == alice.uid_end
    assert carol.uid_base == bob.uid_end
    assert database.users.allocate_uid_base() == carol.uid_end


def test_deleting_a_user_frees_their_range_for_the_next_one_that_fits(database: Database) -> None:
    alice = database.users.add("alice", **QUOTAS)
    bob = database.users.add("bob", **QUOTAS)
    carol = database.users.add("carol", **QUOTAS)
    database.users.delete("bob")
    # A range larger than bob's old one does not fit in the hole; it goes after carol.
    dave = database.users.add("dave", uid_size=DEFAULT_UID_SIZE + 1, **QUOTAS)
    assert dave.uid_base == carol.uid_end
    erin = database.users.add("erin", **QUOTAS)
    assert erin.uid_base == bob.uid_base == alice.uid_end
    ranges = [(user.uid_base, user.uid_size) for user in database.users.list()]
    assert not _overlapping(ranges)


def test_allocation_respects_ranges_that_start_below_first(database: Database) -> None:
    low = database.users.add("low", uid_first=1_000_000, uid_size=1_500_000, **QUOTAS)
    assert low.uid_end > DEFAULT_UID_FIRST
    assert database.users.add("next", **QUOTAS).uid_base == low.uid_end


def test_allocation_fails_clearly_when_no_range_is_left(database: Database) -> None:
    database.users.add("alice", uid_first=UID_END - DEFAULT_UID_SIZE, **QUOTAS)
    with pytest.raises(Conflict, match="No free range"):
        database.users.add("bob", uid_first=UID_END - DEFAULT_UID_SIZE, **QUOTAS)
    with pytest.raises(Invalid):
        database.users.allocate_uid_base(size=0)
    with pytest.raises(Invalid):
        database.users.allocate_uid_base(first=0)


def test_the_schema_itself_refuses_overlapping_ranges(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    with (
        database.engine.transaction(write=True) as connection,
        pytest.raises(sqlite3.IntegrityError),
    ):
        connection.execute(
            "INSERT INTO users (name, role, max_envs, cpu, memory_bytes, disk_bytes, uid_base, "
            "uid_size, created_at) VALUES ('mallory', 'member', 1, 1, 1, 1, ?, 65536, '')",
            (DEFAULT_UID_FIRST + 10,),
        )


def test_concurrent_adds_from_many_threads_never_share_a_range(tmp_path: Path) -> None:
    database = Database(tmp_path / "cloche.db")
    database.migrate()
    threads_count, users_per_thread = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def add_users(thread_number: int) -> None:
        try:
            start.wait()
            for index in range(users_per_thread):
                database.users.add(f"user-{thread_number}-{index}", **QUOTAS)
                if index % 5 == 4:
                    database.users.delete(f"user-{thread_number}-{index - 2}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=add_users, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    users = database.users.list()
    assert len(users) == threads_count * (users_per_thread - users_per_thread // 5)
    assert len({user.uid_base for user in users}) == len(users)
    assert not _overlapping([(user.uid_base, user.uid_size) for user in users])
    database.close()


# SSH keys ---------------------------------------------------------------------------------


def test_add_list_and_remove_keys(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    database.users.add("bob", **QUOTAS)
    laptop = database.users.add_key("alice", "SHA256:one", "ssh-ed25519 AAAAone\n", "laptop")
    database.users.add_key("alice", "SHA256:two", "ssh-ed25519 AAAAtwo")
    database.users.add_key("bob", "SHA256:one", "ssh-ed25519 AAAAone")
    assert laptop.public_key == "ssh-ed25519 AAAAone"
    assert laptop.comment == "laptop"
    assert [key.fingerprint for key in database.users.list_keys("alice")] == [
        "SHA256:one",
        "SHA256:two",
    ]
    assert [key.user for key in database.users.list_keys()] == ["alice", "alice", "bob"]
    database.users.remove_key("alice", "SHA256:one")
    assert [key.fingerprint for key in database.users.list_keys("alice")] == ["SHA256:two"]
    assert [key.fingerprint for key in database.users.list_keys("bob")] == ["SHA256:one"]


def test_key_errors(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    database.users.add_key("alice", "SHA256:one", "ssh-ed25519 AAAAone")
    with pytest.raises(Conflict, match="SHA256:one"):
        database.users.add_key("alice", "SHA256:one", "ssh-ed25519 AAAAone")
    with pytest.raises(NotFound):
        database.users.add_key("nobody", "SHA256:one", "ssh-ed25519 AAAAone")
    with pytest.raises(NotFound):
        database.users.remove_key("alice", "SHA256:other")
    with pytest.raises(NotFound):
        database.users.list_keys("nobody")
    with pytest.raises(Invalid):
        database.users.add_key("alice", "SHA256:two", "ssh-ed25519 AAAA\nssh-rsa BBBB")
