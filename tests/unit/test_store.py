"""The state database: migrations, every repository method, errors, and uid range allocation."""

from __future__ import annotations

import itertools
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound, QuotaExceeded
from cloche.store.database import (
    DEFAULT_UID_FIRST,
    DEFAULT_UID_SIZE,
    MIGRATIONS,
    UID_END,
    Database,
)

GIB = 1024**3
QUOTAS: dict[str, Any] = {"max_envs": 3, "cpu": 4, "memory_bytes": 8 * GIB, "disk_bytes": 50 * GIB}
ENVIRONMENT: dict[str, Any] = {
    "image": "debian-12",
    "profile": "standard",
    "cpu": 2,
    "memory_bytes": 2 * GIB,
    "disk_bytes": 10 * GIB,
    "processes": 2000,
}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "state" / "cloche.db")
    database.migrate()
    yield database
    database.close()


def _overlapping(ranges: list[tuple[int, int]]) -> bool:
    ordered = sorted(ranges)
    return any(
        base + size > next_base for (base, size), (next_base, _) in itertools.pairwise(ordered)
    )


# Opening and migrating --------------------------------------------------------------------


def test_a_new_database_is_private_uses_wal_and_enforces_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "cloche.db"
    with Database(path) as database:
        database.migrate()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        connection = sqlite3.connect(path)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.close()
        with database._transaction(write=False) as ours:
            assert ours.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert ours.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_migrate_brings_a_new_database_to_the_latest_version_and_is_idempotent(
    tmp_path: Path,
) -> None:
    with Database(tmp_path / "cloche.db") as database:
        assert database.schema_version() == 0
        assert database.migrate() == len(MIGRATIONS)
        assert database.migrate() == len(MIGRATIONS)
        assert database.schema_version() == database.latest_version == len(MIGRATIONS)


def test_a_database_at_an_older_version_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "cloche.db"
    with Database(path) as old:
        assert old.migrate(up_to=1) == 1
        old.add_user("alice", **QUOTAS)
        old.add_key("alice", "SHA256:abc", "ssh-ed25519 AAAAkey alice@laptop", "laptop")
        with pytest.raises(HostFailure):  # version 1 has no environments table yet
            old.list_environments()

    with Database(path) as new:
        assert new.schema_version() == 1
        assert new.migrate() == len(MIGRATIONS)
        assert new.get_user("alice").uid_base == DEFAULT_UID_FIRST
        assert [key.fingerprint for key in new.list_keys("alice")] == ["SHA256:abc"]
        new.add_environment("alice", "web", **ENVIRONMENT)
        assert new.count_environments("alice") == 1


def test_a_later_migration_added_to_the_code_upgrades_an_existing_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cloche.db"
    with Database(path) as database:
        database.migrate()
        database.users.add("alice", **QUOTAS)
    extra = "ALTER TABLE users ADD COLUMN shell TEXT NOT NULL DEFAULT '/bin/false';"
    with Database(path, migrations=(*MIGRATIONS, extra)) as upgraded:
        assert upgraded.migrate() == len(MIGRATIONS) + 1
        assert upgraded.get_user("alice").name == "alice"
        with upgraded._transaction(write=False) as connection:
            assert connection.execute("SELECT shell FROM users").fetchone()[0] == "/bin/false"
    # The older code refuses a database written by newer code rather than misreading it.
    with Database(path) as older, pytest.raises(HostFailure, match="upgrade cloche"):
        older.migrate()


def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    broken = "CREATE TABLE half (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    with Database(tmp_path / "cloche.db", migrations=(*MIGRATIONS, broken)) as database:
        with pytest.raises(HostFailure):
            database.migrate()
        assert database.schema_version() == len(MIGRATIONS)
        with database._transaction(write=False) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert "half" not in tables


def test_migrate_refuses_a_version_that_does_not_exist(database: Database) -> None:
    with pytest.raises(Invalid):
        database.migrate(up_to=len(MIGRATIONS) + 1)


def test_a_closed_database_says_so(tmp_path: Path) -> None:
    database = Database(tmp_path / "cloche.db")
    database.close()
    with pytest.raises(HostFailure, match="closed"):
        database.users.list()


# Users ------------------------------------------------------------------------------------


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
    with database._transaction(write=True) as connection, pytest.raises(sqlite3.IntegrityError):
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


def test_connections_of_finished_threads_are_closed(database: Database) -> None:
    def use() -> None:
        database.users.list()

    for _ in range(5):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    database.users.list()
    # This thread's connection plus at most the last finished thread's.
    assert len(database._connections) <= 2


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


# Environments -----------------------------------------------------------------------------


def test_add_get_list_count_and_delete_environments(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    database.users.add("bob", **QUOTAS)
    web = database.environments.add("alice", "web", **ENVIRONMENT)
    database.environments.add("alice", "api", **(ENVIRONMENT | {"profile": "docker"}))
    database.environments.add("bob", "web", **ENVIRONMENT)
    assert web.status == "creating"
    assert web.address is None and web.host_keys is None and web.state_hint is None
    assert database.environments.get("alice", "web") == web
    assert [env.name for env in database.environments.list("alice")] == ["api", "web"]
    assert [env.qualified_name for env in database.environments.list()] == [
        "alice/api",
        "alice/web",
        "bob/web",
    ]
    assert database.environments.count("alice") == 2
    assert database.environments.count("bob") == 1
    database.environments.delete("alice", "web")
    assert database.environments.count("alice") == 1
    with pytest.raises(NotFound, match="web"):
        database.environments.get("alice", "web")
    with pytest.raises(NotFound):
        database.environments.delete("alice", "web")


def test_environment_errors(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    database.environments.add("alice", "web", **ENVIRONMENT)
    with pytest.raises(Conflict, match="web"):
        database.environments.add("alice", "web", **ENVIRONMENT)
    with pytest.raises(NotFound):
        database.environments.add("nobody", "web", **ENVIRONMENT)
    with pytest.raises(NotFound):
        database.environments.list("nobody")
    with pytest.raises(Invalid):
        database.environments.add("alice", "db", **(ENVIRONMENT | {"profile": "privileged"}))
    with pytest.raises(Invalid):
        database.environments.add("alice", "-db", **ENVIRONMENT)
    assert database.environments.count("alice") == 1


def test_the_env_count_quota_is_checked_when_adding(database: Database) -> None:
    database.users.add("alice", **(QUOTAS | {"max_envs": 2}))
    database.environments.add("alice", "one", **ENVIRONMENT)
    database.environments.add("alice", "two", **ENVIRONMENT)
    with pytest.raises(QuotaExceeded, match="2 of their 2"):
        database.environments.add("alice", "three", **ENVIRONMENT)


def test_update_environment_changes_only_what_is_given_and_none_clears(
    database: Database,
) -> None:
    database.users.add("alice", **QUOTAS)
    created = database.environments.add("alice", "web", **ENVIRONMENT)
    keys = {"ssh-ed25519": "ssh-ed25519 AAAAhost"}
    ready = database.environments.update(
        "alice",
        "web",
        status="ready",
        state_hint="Running",
        address="10.120.0.10",
        host_keys=keys,
    )
    assert (ready.status, ready.state_hint, ready.address) == ("ready", "Running", "10.120.0.10")
    assert ready.host_keys == keys
    assert (ready.image, ready.cpu, ready.created_at) == (
        created.image,
        created.cpu,
        created.created_at,
    )
    assert database.environments.get("alice", "web") == ready
    cleared = database.environments.update("alice", "web", address=None, host_keys=None)
    assert cleared.address is None and cleared.host_keys is None
    assert cleared.status == "ready"
    with pytest.raises(Invalid):
        database.environments.update("alice", "web", status="exploded")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        database.environments.update("alice", "nope", status="ready")


def test_two_environments_cannot_share_an_address(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    database.users.add("bob", **QUOTAS)
    database.environments.add("alice", "web", address="10.120.0.10", **ENVIRONMENT)
    with pytest.raises(Conflict, match="alice/web"):
        database.environments.add("bob", "web", address="10.120.0.10", **ENVIRONMENT)
    database.environments.add("bob", "web", **ENVIRONMENT)
    with pytest.raises(Conflict, match="alice/web"):
        database.environments.update("bob", "web", address="10.120.0.10")
    # Setting an environment's own address again is no clash.
    database.environments.update("alice", "web", address="10.120.0.10")


# Operations -------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_operations_run_report_progress_and_finish(tmp_path: Path) -> None:
    with Database(tmp_path / "cloche.db", clock=_Clock()) as database:
        database.migrate()
        created = database.operations.create("create environment", "alice/web")
        assert created.status == "running" and not created.finished
        assert created.finished_at is None and created.error is None
        assert len(created.id) == 36
        progress = database.operations.update(created.id, progress="starting")
        assert progress.progress == "starting" and progress.status == "running"
        done = database.operations.update(created.id, status="succeeded", progress="ready")
        assert done.finished and done.finished_at is not None
        assert done.finished_at > done.created_at
        assert database.operations.get(created.id) == done
        with pytest.raises(Conflict, match="already succeeded"):
            database.operations.update(created.id, status="failed")

        failed = database.operations.create("delete environment", "alice/api")
        failed = database.operations.update(failed.id, status="failed", error="LXD said no.")
        assert failed.error == "LXD said no."
        running = database.operations.create("create environment", "bob/web")

        assert [op.id for op in database.operations.list()] == [running.id, failed.id, done.id]
        assert [op.id for op in database.operations.list(limit=1)] == [running.id]
        assert [op.id for op in database.operations.list(status="failed")] == [failed.id]
        assert [op.id for op in database.operations.list(target="alice/web")] == [done.id]


def test_operation_errors_and_restart_cleanup(database: Database) -> None:
    with pytest.raises(NotFound):
        database.operations.get("no-such-id")
    with pytest.raises(NotFound):
        database.operations.update("no-such-id", progress="x")
    with pytest.raises(Invalid):
        database.operations.create("", "alice/web")
    first = database.operations.create("create environment", "alice/web")
    second = database.operations.create("create environment", "alice/api")
    database.operations.update(second.id, status="succeeded")
    assert database.operations.fail_unfinished("The daemon restarted; retry.") == 1
    lost = database.operations.get(first.id)
    assert (lost.status, lost.error) == ("failed", "The daemon restarted; retry.")
    assert lost.finished_at is not None
    assert database.operations.get(second.id).status == "succeeded"
