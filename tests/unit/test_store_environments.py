"""The environment store: records, the env count quota, addresses, and egress on the record."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.model.errors import Conflict, Invalid, NotFound, QuotaExceeded
from cloche.store.database import Database
from cloche.store.engine import MIGRATIONS
from tests.unit.storelib import ENVIRONMENT, QUOTAS


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


# Egress -----------------------------------------------------------------------------------


def test_egress_is_read_with_the_record_and_set_with_update(database: Database) -> None:
    database.users.add("alice", **QUOTAS)
    created = database.environments.add("alice", "web", **ENVIRONMENT)
    assert created.egress == "open"
    assert database.environments.get("alice", "web").egress == "open"
    limited = database.environments.update("alice", "web", egress="allow:10.0.0.0/8")
    assert limited.egress == "allow:10.0.0.0/8"
    assert [env.egress for env in database.environments.list()] == ["allow:10.0.0.0/8"]
    # Other changes keep the egress policy.
    assert database.environments.update("alice", "web", state_hint="Running").egress == (
        "allow:10.0.0.0/8"
    )
    with pytest.raises(Invalid):
        database.environments.update("alice", "web", egress="sometimes")
    assert database.environments.get("alice", "web").egress == "allow:10.0.0.0/8"
    closed = database.environments.add("alice", "db", egress="none", **ENVIRONMENT)
    assert database.environments.get("alice", "db") == closed


def test_a_database_at_the_previous_version_keeps_its_egress_when_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cloche.db"
    with Database(path) as old:
        old.migrate(up_to=len(MIGRATIONS) - 1)
        old.users.add("alice", **QUOTAS)
        old.environments.add("alice", "web", **ENVIRONMENT)
        old.environments.add("alice", "db", **ENVIRONMENT)
        # As the code of that version stored it: in the environments table's egress column.
        with old.engine.transaction(write=True) as connection:
            connection.execute(
                "UPDATE environments SET egress = 'allow:10.0.0.0/8' WHERE name = 'web'"
            )
    with Database(path) as new:
        assert new.migrate() == len(MIGRATIONS)
        assert new.environments.get("alice", "web").egress == "allow:10.0.0.0/8"
        assert {env.name: env.egress for env in new.environments.list("alice")} == {
            "db": "open",
            "web": "allow:10.0.0.0/8",
        }


def test_environments_recorded_before_egress_existed_migrate_to_open(tmp_path: Path) -> None:
    egress_version = next(
        number for number, script in enumerate(MIGRATIONS, 1) if "COLUMN egress" in script
    )
    path = tmp_path / "cloche.db"
    with Database(path) as old:
        old.migrate(up_to=egress_version - 1)
        old.users.add("alice", **QUOTAS)
        with old.engine.transaction(write=True) as connection:
            connection.execute(
                "INSERT INTO environments (user, name, image, profile, cpu, memory_bytes, "
                "disk_bytes, processes, status, created_at) VALUES ('alice', 'web', 'debian-12', "
                "'standard', 1, 1, 1, 1, 'ready', '2025-01-01T00:00:00.000000+00:00')"
            )
    with Database(path) as new:
        new.migrate()
        web = new.environments.get("alice", "web")
        assert (web.status, web.egress) == ("ready", "open")
