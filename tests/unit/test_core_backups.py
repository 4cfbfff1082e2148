"""The backup use cases against fakes at the ports: restic, secrets, catalog and LXD exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import pytest

from cloche.api.app import create_app
from cloche.core import (
    backup_listing,
    backup_repositories,
    backup_restore,
    backup_retention,
    backup_run,
    backup_schedule,
    environments,
)
from cloche.model.backups import (
    RESTORE_DIRECTORY,
    SCHEDULE_INTERVAL_SECONDS,
    RepositoryView,
    Retention,
    backups_dir,
)
from cloche.model.config import BackupsConfig
from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound
from cloche.model.records import EnvironmentRecord
from cloche.render.restic import forget_arguments
from tests.unit.backup_fakes import FakeBackupCatalog, FakeRestic, FakeSecrets
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    GIB,
    FakeContext,
    TestClient,
    add_user,
    events,
    fake_context,
    new_env,
    wait_operation,
)

PROJECT = "cloche-alice"
S3_URL = "s3:http://10.0.0.5:9000/cloche"
DAY = SCHEDULE_INTERVAL_SECONDS


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    """alice with web (2 CPU, 3 GiB, 12 GiB) and db, and the local repository."""
    with fake_context(tmp_path) as context:
        add_user(context, "alice", max_envs=4, cpu=8, memory_bytes=16 * GIB, disk_bytes=80 * GIB)
        web = new_env("web", cpu=2, memory_bytes=3 * GIB, disk_bytes=12 * GIB)
        for env in (web, new_env("db")):
            operation = environments.request_create(context, "alice", env)
            assert wait_operation(context, operation).status == "succeeded"
        made = backup_repositories.ensure_local_repository(
            context.state_dir, context.host.secrets, context.host.restic, context.host.backup_files
        )
        assert made is True
        context.fake.calls.clear()
        restic(context).calls.clear()
        yield context


def restic(context: FakeContext) -> FakeRestic:
    return cast(FakeRestic, context.host.restic)


def secrets(context: FakeContext) -> FakeSecrets:
    return cast(FakeSecrets, context.host.secrets)


def catalog(context: FakeContext) -> FakeBackupCatalog:
    return cast(FakeBackupCatalog, context.backup_catalog)


def local_url(context: FakeContext) -> str:
    return str(backup_repositories.local_repository_path(context.state_dir))


def env(context: FakeContext, name: str) -> EnvironmentRecord:
    return context.database.environments.get("alice", name)


def back_up(context: FakeContext, name: str = "web") -> str:
    """One backup of alice/name into the local repository; its id."""
    repository = backup_repositories.repository(context, None)
    return backup_run.backup_environment(context, repository, env(context, name)).id


def outcomes(context: FakeContext, action: str) -> list[tuple[str, str]]:
    return [(event.target, event.outcome) for event in events(context, action)]


def error_of(context: FakeContext, operation: str) -> dict[str, Any]:
    record = wait_operation(context, operation)
    assert record.status == "failed"
    return cast(dict[str, Any], json.loads(record.error or "{}"))


def restore_files(context: FakeContext) -> list[Path]:
    scratch = backups_dir(context.state_dir) / RESTORE_DIRECTORY
    return sorted(scratch.iterdir()) if scratch.is_dir() else []


# Backup --------------------------------------------------------------------------------------


def test_one_backup_streams_the_export_into_restic_and_is_catalogued(
    context: FakeContext,
) -> None:
    operation = backup_run.request_backup(context, "alice", ("alice", "web"), None)
    assert wait_operation(context, operation).status == "succeeded"
    assert restic(context).commands() == ["backup"]
    arguments = restic(context).arguments_of("backup")[0]
    assert "user=alice" in arguments and "env=web" in arguments
    # The snapshot is taken, exported, and deleted again, in that order.
    lxd = [call.method for call in context.fake.calls if call.method != "find"]
    assert lxd == ["create_snapshot", "export", "delete_snapshot"]
    assert context.fake.instances[PROJECT]["web"].snapshots == {}
    # What restic got on stdin is the instance's export.
    stored = restic(context).repositories[local_url(context)]
    [data] = stored.data.values()
    assert b"limits.cpu" in data and b"backup/container/backup.yaml" in data
    [record] = catalog(context).list(context.state_dir)
    assert (record.repository, record.user, record.env) == ("local", "alice", "web")
    assert record.id == stored.snapshots[0]["short_id"]
    assert record.data_added == record.total_bytes == len(data)
    [event] = events(context, "backed up environment")
    assert (event.target, event.outcome, event.actor) == ("alice/web", "succeeded", "alice")
    assert event.details == {"repository": "local", "id": record.id, "data_added": len(data)}
    [row] = backup_listing.list_backups(context, ("alice", "web"), None)
    assert (row.id, row.environment, row.data_added) == (record.id, "alice/web", len(data))


def test_a_second_backup_adds_what_changed_only(context: FakeContext) -> None:
    back_up(context)
    back_up(context)
    first, second = catalog(context).list(context.state_dir)
    assert first.data_added > 0 and second.data_added == 0
    assert second.total_bytes == first.total_bytes


def test_backing_up_all_goes_on_past_a_failing_environment(context: FakeContext) -> None:
    def refuse_db(project: str | None, name: str, *rest: object) -> None:
        if name == "db":
            raise HostFailure("LXD refused to snapshot 'db' (disk full); free space on the pool.")

    context.fake.before["create_snapshot"] = refuse_db
    operation = backup_run.request_backup(context, "admin", None, None)
    error = error_of(context, operation)
    assert error["error"] == "HostFailure"
    assert error["message"].startswith("1 of 2 backups failed (alice/db: LXD refused")
    assert "read the audit log" in error["message"]
    # web was backed up all the same, and each environment has its own audit event.
    assert [r.env for r in catalog(context).list(context.state_dir)] == ["web"]
    assert sorted(outcomes(context, "backed up environment")) == [
        ("alice/db", "failed"),
        ("alice/web", "succeeded"),
    ]
    failed = next(e for e in events(context, "backed up environment") if e.outcome == "failed")
    assert "disk full" in str(failed.details["error"])


def test_one_environment_that_fails_fails_its_operation(context: FakeContext) -> None:
    restic(context).fail["backup"] = HostFailure("restic failed to back up alice/web.")
    operation = backup_run.request_backup(context, "alice", ("alice", "web"), None)
    assert error_of(context, operation)["message"] == "restic failed to back up alice/web."
    # The snapshot the export was taken from is deleted even so.
    assert context.fake.instances[PROJECT]["web"].snapshots == {}
    assert catalog(context).records == []


# Restore -------------------------------------------------------------------------------------


def test_restore_as_new_makes_a_new_environment_with_the_backups_limits(
    context: FakeContext,
) -> None:
    backup_id = back_up(context)
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new="copy", in_place=False, repository_name=None
    )
    assert wait_operation(context, operation).status == "succeeded"
    copy, web = env(context, "copy"), env(context, "web")
    assert copy.status == "ready"
    assert (copy.cpu, copy.memory_bytes, copy.disk_bytes) == (2, 3 * GIB, 12 * GIB)
    assert copy.address and copy.address not in (web.address, env(context, "db").address)
    instance = context.fake.instances[PROJECT]["copy"]
    assert instance.info.running
    assert instance.info.devices["eth0"]["ipv4.address"] == copy.address
    assert instance.info.config["volatile.apply_template"] == "copy"  # new machine-id, keys
    [reconfigure] = context.fake.calls_of("reconfigure_import")
    assert reconfigure.kwargs == {"forget_mac": True, "new_identity": True}
    assert restore_files(context) == []
    [event] = events(context, "restored backup")
    assert (event.target, event.outcome) == ("alice/copy", "succeeded")
    assert event.details["mode"] == "as new" and event.details["source"] == "alice/web"


def test_restore_as_new_that_fails_to_boot_leaves_nothing_behind(context: FakeContext) -> None:
    backup_id = back_up(context)
    context.fake.fail_boot = True
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new="copy", in_place=False, repository_name=None
    )
    assert "stopped while booting" in error_of(context, operation)["message"]
    assert "copy" not in context.fake.instance_names(PROJECT)
    with pytest.raises(NotFound):
        env(context, "copy")
    assert restore_files(context) == []
    assert outcomes(context, "restored backup") == [("alice/copy", "failed")]


def test_restore_as_new_over_the_quota_is_refused_before_anything_is_made(
    context: FakeContext,
) -> None:
    backup_id = back_up(context)
    for name in ("two", "three"):
        operation = backup_restore.request_restore(
            context, "alice", backup_id, as_new=name, in_place=False, repository_name=None
        )
        wait_operation(context, operation)
    # alice may have 4 environments: web, db, two, three; a fifth is over her quota.
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new="four", in_place=False, repository_name=None
    )
    assert error_of(context, operation)["error"] == "QuotaExceeded"
    assert "four" not in context.fake.instance_names(PROJECT)


def test_restore_in_place_puts_the_backup_in_the_environments_place(
    context: FakeContext,
) -> None:
    backup_id = back_up(context)
    web = context.fake.instances[PROJECT]["web"]
    web.info.config["user.changed"] = "after the backup"
    context.fake.calls.clear()
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new=None, in_place=True, repository_name=None
    )
    assert wait_operation(context, operation).status == "succeeded"
    methods = [c.method for c in context.fake.calls if c.project == PROJECT]
    steps = [m for m in methods if m in ("delete", "import_backup", "reconfigure_import")]
    assert steps == ["delete", "import_backup", "reconfigure_import"]
    assert methods.index("set_limits") < methods.index("start")
    restored = context.fake.instances[PROJECT]["web"]
    assert "user.changed" not in restored.info.config
    assert restored.info.running
    assert restored.info.devices["eth0"]["ipv4.address"] == env(context, "web").address
    [reconfigure] = context.fake.calls_of("reconfigure_import")
    assert reconfigure.kwargs == {"forget_mac": False, "new_identity": False}
    assert env(context, "web").status == "ready"
    assert restore_files(context) == []
    [event] = events(context, "restored backup")
    assert (event.target, event.details["mode"]) == ("alice/web", "in place")


def test_restore_in_place_that_fails_keeps_the_record_for_another_try(
    context: FakeContext,
) -> None:
    backup_id = back_up(context)
    context.fake.fail["import_backup"] = HostFailure("LXD refused the import (disk full).")
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new=None, in_place=True, repository_name=None
    )
    assert error_of(context, operation)["message"] == "LXD refused the import (disk full)."
    # The old instance is gone; the record is 'ready' again, not a 'creating' the reconciler
    # would remove, so the restore can be run again.
    assert env(context, "web").status == "ready"
    assert "web" not in context.fake.instance_names(PROJECT)
    assert restore_files(context) == []
    del context.fake.fail["import_backup"]
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new=None, in_place=True, repository_name=None
    )
    assert wait_operation(context, operation).status == "succeeded"
    assert context.fake.instances[PROJECT]["web"].info.running


def test_a_file_that_is_no_export_is_refused_before_the_environment_is_touched(
    context: FakeContext,
) -> None:
    backup_id = back_up(context)
    stored = restic(context).repositories[local_url(context)]
    stored.data = {key: b"not a tarball at all" * 40 for key in stored.data}
    context.fake.calls.clear()
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new=None, in_place=True, repository_name=None
    )
    error = error_of(context, operation)
    assert error == {
        "error": "Invalid",
        "message": f"The backup {error['message'].split()[2]} holds no backup.yaml; "
        "it is not an LXD export.",
    }
    assert "delete" not in context.fake.methods(PROJECT)
    assert context.fake.instances[PROJECT]["web"].info.running


def test_the_catalog_says_which_repository_holds_a_backup(context: FakeContext) -> None:
    backup_repositories.add_repository(context, "admin", "offsite", S3_URL, password="pw")
    offsite = backup_repositories.repository(context, "offsite")
    backup_id = backup_run.backup_environment(context, offsite, env(context, "web")).id
    # The local repository cannot be reached now; the catalog keeps it from being asked.
    del restic(context).repositories[local_url(context)]
    operation = backup_restore.request_restore(
        context, "alice", backup_id, as_new="copy", in_place=False, repository_name=None
    )
    assert wait_operation(context, operation).status == "succeeded"
    assert {name for name, _ in restic(context).calls} == {"offsite"}


# Check, forget, retention --------------------------------------------------------------------


def test_check_says_intact_or_names_the_damage(context: FakeContext) -> None:
    answer = backup_retention.check_repository(context, "admin", None, read_data=True)
    assert answer == backup_retention.RepositoryCheck(repository="local", read_data=True, ok=True)
    assert restic(context).arguments_of("check") == [("check", "--read-data")]
    restic(context).damaged.add(local_url(context))
    with pytest.raises(HostFailure) as raised:
        backup_retention.check_repository(context, "admin", "local", read_data=False)
    assert str(raised.value).startswith(
        "Backup repository 'local' is damaged (error: pack 1a2b3c4d: does not match its hash)"
    )
    assert outcomes(context, "checked backup repository") == [
        ("local", "succeeded"),
        ("local", "failed"),
    ]


def test_check_with_a_wrong_password_says_so(context: FakeContext) -> None:
    known = secrets(context).repositories["local"]
    secrets(context).repositories["local"] = type(known)("local", known.url, "not-it")
    with pytest.raises(Invalid, match="The password of backup repository 'local' is wrong"):
        backup_retention.check_repository(context, "admin", None, read_data=False)


def test_removing_one_backup_forgets_it_prunes_and_drops_its_record(
    context: FakeContext,
) -> None:
    first, second = back_up(context), back_up(context)
    restic(context).calls.clear()
    operation = backup_retention.request_remove_backup(context, "admin", first, None)
    assert wait_operation(context, operation).status == "succeeded"
    full_id = next(c for c in restic(context).calls if c[1][0] == "forget")[1][1]
    assert full_id.startswith(first) and len(full_id) == 64
    assert restic(context).commands()[-3:] == ["forget", "prune", "snapshots"]
    assert restic(context).snapshot_ids(local_url(context)) == [second]
    assert [r.id for r in catalog(context).list(context.state_dir)] == [second]
    [event] = [e for e in events(context, "removed backup") if e.outcome == "succeeded"]
    assert event.target == first and event.details["environment"] == "alice/web"


def test_retention_forgets_per_environment_with_the_policy_then_prunes_once(
    context: FakeContext,
) -> None:
    context.config = context.config.model_copy(
        update={"backups": BackupsConfig(keep_daily=1, keep_weekly=0, keep_monthly=0)}
    )
    for name in ("web", "web", "web", "db"):
        back_up(context, name)
    restic(context).calls.clear()
    answer = backup_retention.apply_retention(context, "admin", None)
    assert answer == backup_retention.RetentionResult(repository="local", forgotten=2, kept=2)
    policy = Retention(1, 0, 0)
    forgets = restic(context).arguments_of("forget")
    assert forgets == [
        tuple(forget_arguments(policy, "alice", "db")),
        tuple(forget_arguments(policy, "alice", "web")),
    ]
    assert restic(context).commands() == ["snapshots", "forget", "forget", "prune", "snapshots"]
    assert len(catalog(context).list(context.state_dir)) == 2
    [event] = events(context, "applied backup retention")
    assert event.details["forgotten"] == 2 and event.details["keep_daily"] == 1


def test_retention_in_the_background_is_an_operation(context: FakeContext) -> None:
    back_up(context)
    operation = backup_retention.request_retention(context, "admin", None)
    assert wait_operation(context, operation).status == "succeeded"
    assert restic(context).commands()[-2:] == ["prune", "snapshots"]


# The daily schedule --------------------------------------------------------------------------


def test_the_daily_round_runs_a_day_after_the_last_and_not_before(
    context: FakeContext,
) -> None:
    start = 1_800_000_000.0
    context.host.backup_files.stamp_round(context.state_dir, start)
    assert backup_schedule.run_round_if_due(context, start + DAY - 60) is False
    assert restic(context).calls == []
    assert backup_schedule.run_round_if_due(context, start + DAY) is True
    # Every ready environment, then retention (forget each, one prune).
    assert sorted(r.env for r in catalog(context).list(context.state_dir)) == ["db", "web"]
    assert restic(context).commands() == [
        "backup",
        "backup",
        "snapshots",
        "forget",
        "forget",
        "prune",
        "snapshots",
    ]
    scheduled = events(context, "backed up environment")
    assert {e.actor for e in scheduled} == {"schedule"}
    assert all(e.details["scheduled"] is True for e in scheduled)
    assert context.host.backup_files.last_round(context.state_dir) == start + DAY
    assert backup_schedule.run_round_if_due(context, start + DAY + 600) is False


def test_a_scheduled_round_backs_up_the_others_when_one_fails(context: FakeContext) -> None:
    def refuse_web(project: str | None, name: str, *rest: object) -> None:
        if name == "web":
            raise HostFailure("LXD refused to snapshot 'web'.")

    context.fake.before["create_snapshot"] = refuse_web
    backup_schedule.scheduled_run(context)
    assert [r.env for r in catalog(context).list(context.state_dir)] == ["db"]
    assert sorted(outcomes(context, "backed up environment")) == [
        ("alice/db", "succeeded"),
        ("alice/web", "failed"),
    ]
    assert "prune" in restic(context).commands()  # retention ran all the same


def test_the_schedule_starts_a_day_out_drops_old_restore_files_and_can_be_off(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = backups_dir(context.state_dir) / RESTORE_DIRECTORY
    scratch.mkdir(parents=True)
    (scratch / "alice-web-left.tar").write_bytes(b"half a restore")
    started: list[tuple[str, float, Any]] = []
    monkeypatch.setattr(
        backup_schedule, "run_every", lambda *args: started.append(args) or "thread"
    )
    assert backup_schedule.start_backup_schedule(context) == "thread"
    assert restore_files(context) == []
    [(name, _, action)] = started
    assert name == "backup-schedule"
    assert context.host.backup_files.last_round(context.state_dir) is not None
    action()  # the first poll, right away: a new host's first round is a day away
    assert restic(context).calls == []
    context.config = context.config.model_copy(update={"backups": BackupsConfig(schedule="off")})
    assert backup_schedule.start_backup_schedule(context) is None
    assert len(started) == 1


# Repositories --------------------------------------------------------------------------------


def test_a_repository_is_initialised_then_opened_and_never_shows_a_secret(
    context: FakeContext,
) -> None:
    keys = {"s3_access_key": "AKIDEXAMPLE", "s3_secret_key": "SECRETEXAMPLE"}
    added = backup_repositories.add_repository(
        context, "admin", "offsite", S3_URL, password=None, **keys
    )
    assert added == backup_repositories.AddedRepository(
        RepositoryView(name="offsite", kind="s3", url=S3_URL), state="initialised"
    )
    again = backup_repositories.add_repository(
        context, "admin", "offsite", S3_URL, password="password-2", **keys
    )
    assert again.state == "opened"
    listed = backup_repositories.list_repositories(context)
    assert [(r.repository.name, r.default) for r in listed] == [("local", True), ("offsite", False)]
    shown = [asdict(each) for each in listed]
    everything = json.dumps(shown) + json.dumps([e.details for e in events(context)])
    assert "password-" not in everything and "SECRETEXAMPLE" not in everything


def test_a_repository_whose_init_fails_leaves_nothing_behind(context: FakeContext) -> None:
    restic(context).fail["init"] = HostFailure("restic failed to initialise the repository.")
    with pytest.raises(HostFailure):
        backup_repositories.add_repository(context, "admin", "offsite", S3_URL, password="pw")
    assert "offsite" not in secrets(context).repositories
    assert S3_URL not in restic(context).repositories
    assert outcomes(context, "added backup repository") == [("offsite", "failed")]


def test_a_wrong_password_for_a_known_repository_keeps_the_right_one(
    context: FakeContext,
) -> None:
    before = secrets(context).repositories["local"]
    with pytest.raises(Invalid, match="The password of backup repository 'local' is wrong"):
        backup_repositories.add_repository(
            context, "admin", "local", before.url, password="guessed"
        )
    assert secrets(context).repositories["local"] == before


def test_removing_a_repository_forgets_it_but_not_the_default(context: FakeContext) -> None:
    backup_repositories.add_repository(context, "admin", "offsite", S3_URL, password="pw")
    backup_repositories.remove_repository(context, "admin", "offsite")
    assert sorted(secrets(context).repositories) == ["local"]
    with pytest.raises(Conflict, match="is the default"):
        backup_repositories.remove_repository(context, "admin", "local")


# Bad input -----------------------------------------------------------------------------------


def test_an_unknown_repository_is_not_found_in_one_sentence(context: FakeContext) -> None:
    with pytest.raises(NotFound) as raised:
        backup_run.request_backup(context, "alice", ("alice", "web"), "nowhere")
    assert str(raised.value) == (
        "There is no backup repository 'nowhere' (known: local); add it with "
        "'cloche backup repo add'."
    )
    assert outcomes(context, "backed up environment") == [("alice/web", "failed")]
    with pytest.raises(NotFound, match="'nowhere'"):
        backup_retention.check_repository(context, "admin", "nowhere", read_data=False)
    with pytest.raises(NotFound, match="'nowhere'"):
        backup_listing.list_backups(context, None, "nowhere")


def test_an_unknown_or_malformed_backup_id_is_refused(context: FakeContext) -> None:
    back_up(context)
    with pytest.raises(NotFound) as raised:
        backup_restore.request_restore(
            context, "alice", "0123abcd", as_new="copy", in_place=False, repository_name=None
        )
    assert str(raised.value) == (
        "There is no backup 0123abcd in local; list them with 'cloche backup list'."
    )
    with pytest.raises(Invalid, match="'xyz' is not a backup id"):
        backup_retention.request_remove_backup(context, "admin", "xyz", None)
    assert outcomes(context, "restored backup") == [("backup 0123abcd", "failed")]


def test_a_restore_must_say_how_and_not_reuse_a_name(context: FakeContext) -> None:
    backup_id = back_up(context)
    for as_new, in_place in ((None, False), ("copy", True)):
        with pytest.raises(Invalid, match="exactly one of --as-new NAME or --in-place"):
            backup_restore.request_restore(
                context, "alice", backup_id, as_new=as_new, in_place=in_place, repository_name=None
            )
    with pytest.raises(Conflict, match="alice/db already exists; choose another name"):
        backup_restore.request_restore(
            context, "alice", backup_id, as_new="db", in_place=False, repository_name=None
        )


def test_a_backup_of_an_environment_not_ready_is_a_conflict(context: FakeContext) -> None:
    context.database.environments.update("alice", "db", status="deleting")
    with pytest.raises(Conflict, match="alice/db is deleting; back it up once ready"):
        backup_run.request_backup(context, "alice", ("alice", "db"), None)


# The API reaches the use cases ---------------------------------------------------------------


def test_the_backup_routes_reach_the_use_cases(context: FakeContext) -> None:
    with TestClient(create_app(context, header_caller)) as client:
        answer = client.post("/v1/backups", json={"user": "alice", "name": "web"})
        assert answer.status_code == 202, answer.text
        assert wait_operation(context, answer.json()["operation"]).status == "succeeded"
        [row] = client.get("/v1/backups").json()
        assert row["environment"] == "alice/web"
        assert client.get("/v1/backups/repositories").json()[0]["name"] == "local"
        checked = client.post("/v1/backups/check", json={})
        assert checked.json()["ok"] is True
        missing = client.post("/v1/backups/0123abcd/restore", json={"as_new": "copy"})
        assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
