"""The store's engine: opening the file, connections per thread, migrations, closing."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from cloche.model.errors import HostFailure, Invalid
from cloche.store.database import Database
from cloche.store.engine import MIGRATIONS
from cloche.store.users import DEFAULT_UID_FIRST
from tests.unit.storelib import ENVIRONMENT, QUOTAS


def test_a_new_database_is_private_uses_wal_and_enforces_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "cloche.db"
    with Database(path) as database:
        database.migrate()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        connection = sqlite3.connect(path)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.close()
        with database.engine.transaction(write=False) as ours:
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
        old.users.add("alice", **QUOTAS)
        old.users.add_key("alice", "SHA256:abc", "ssh-ed25519 AAAAkey alice@laptop", "laptop")
        with pytest.raises(HostFailure):  # version 1 has no environments table yet
            old.environments.list()

    with Database(path) as new:
        assert new.schema_version() == 1
        assert new.migrate() == len(MIGRATIONS)
        assert new.users.get("alice").uid_base == DEFAULT_UID_FIRST
        assert [key.fingerprint for key in new.users.list_keys("alice")] == ["SHA256:abc"]
        new.environments.add("alice", "web", **ENVIRONMENT)
        assert new.environments.count("alice") == 1


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
        assert upgraded.users.get("alice").name == "alice"
        with upgraded.engine.transaction(write=False) as connection:
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
        with database.engine.transaction(write=False) as connection:
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


def test_connections_of_finished_threads_are_closed(database: Database) -> None:
    def use() -> None:
        database.users.list()

    for _ in range(5):
        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
    database.users.list()
    # This thread's connection plus at most the last finished thread's.
    assert len(database.engine._connections) <= 2
