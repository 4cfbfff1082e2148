"""core.reconcile against the fakes: repair half-made work, report what is missing or unknown."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core import environments, reconcile
from cloche.core.reconcile import check_addresses
from cloche.model.errors import HostFailure, NotFound
from cloche.model.errors_wire import stored_error_body
from cloche.model.instances import ROLE_TEMPLATE
from cloche.model.records import EnvironmentStatus
from tests.unit.fakes import (
    GIB,
    FakeContext,
    add_user,
    events,
    fake_context,
    new_env,
    wait_operation,
)

PROJECT = "cloche-alice"


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        context.fake.calls.clear()
        yield context


def record(context: FakeContext, name: str, status: EnvironmentStatus) -> None:
    context.database.environments.add(
        "alice",
        name,
        image="cloche/bookworm",
        profile="standard",
        cpu=1,
        memory_bytes=GIB,
        disk_bytes=10 * GIB,
        processes=512,
        status=status,
    )


def reconciler_events(context: FakeContext) -> list[tuple[str, str, str]]:
    return [
        (event.action, event.target, event.outcome)
        for event in events(context)
        if event.actor == reconcile.ACTOR
    ]


@pytest.mark.parametrize("status", ["creating", "deleting"])
def test_half_made_environment_is_removed(context: FakeContext, status: EnvironmentStatus) -> None:
    record(context, "web", status)
    context.fake.add_instance(PROJECT, "web", owner="alice")

    findings = reconcile.reconcile_environments(context, startup=True)

    assert "web" not in context.fake.instance_names(PROJECT)
    with pytest.raises(NotFound):
        context.database.environments.get("alice", "web")
    assert len(findings) == 1
    assert "alice/web" in findings[0]
    assert reconciler_events(context) == [("repaired environment", "alice/web", "succeeded")]
    # Nothing left to repair.
    assert reconcile.reconcile_environments(context, startup=True) == []
    assert len(reconciler_events(context)) == 1


def test_half_made_records_are_only_repaired_at_startup(context: FakeContext) -> None:
    # While the daemon runs, a 'creating' record may exist a moment before its operation does.
    record(context, "web", "creating")
    assert reconcile.reconcile_environments(context) == []
    assert context.database.environments.get("alice", "web").status == "creating"


def test_creating_record_with_a_running_operation_is_left_alone(context: FakeContext) -> None:
    record(context, "web", "creating")
    context.fake.add_instance(PROJECT, "web", owner="alice")
    context.database.operations.create("create environment", "alice/web")

    assert reconcile.reconcile_environments(context, startup=True) == []

    assert context.database.environments.get("alice", "web").status == "creating"
    assert "web" in context.fake.instance_names(PROJECT)
    assert reconciler_events(context) == []


def test_environment_deleted_by_a_running_user_purge_is_left_alone(context: FakeContext) -> None:
    record(context, "web", "deleting")
    context.fake.add_instance(PROJECT, "web", owner="alice")
    context.database.operations.create("remove user", "alice")

    reconcile.reconcile_environments(context, startup=True)

    assert context.database.environments.get("alice", "web").status == "deleting"
    assert reconciler_events(context) == []


def test_missing_instance_is_reported_once(context: FakeContext) -> None:
    record(context, "web", "ready")

    first = reconcile.reconcile_environments(context)

    assert first == ["alice/web has a record but LXD has no instance"]
    env = context.database.environments.get("alice", "web")
    assert env.state_hint == "Missing"
    assert env.status == "ready"  # reported, not removed
    assert reconciler_events(context) == [("found environment missing", "alice/web", "failed")]
    [event] = events(context, "found environment missing")
    assert "cloche rm alice/web" in str(event.details["fix"])

    second = reconcile.reconcile_environments(context)

    assert second == first
    assert len(reconciler_events(context)) == 1


def test_unrecorded_environment_instance_is_reported_not_deleted(context: FakeContext) -> None:
    context.fake.add_instance(PROJECT, "stray", owner="alice", status="Running")
    context.fake.add_instance(PROJECT, "tmpl-cloche-bookworm", role=ROLE_TEMPLATE)
    # Projects cloche does not name are not its business.
    context.fake.add_instance("default", "other")

    findings = reconcile.reconcile_environments(context)

    assert findings == ["alice/stray exists in LXD without a record"]
    assert context.fake.instance_names(PROJECT) == ["stray", "tmpl-cloche-bookworm"]
    assert context.fake.calls_of("delete") == []
    assert reconciler_events(context) == [("found unrecorded instance", "alice/stray", "failed")]
    [event] = events(context, "found unrecorded instance")
    assert event.details == {"project": PROJECT}


def test_healthy_state_has_no_findings(context: FakeContext) -> None:
    record(context, "web", "ready")
    context.fake.add_instance(PROJECT, "web", owner="alice", status="Running")

    assert reconcile.reconcile_environments(context) == []
    assert reconciler_events(context) == []


def test_reconcile_once_logs_instead_of_raising(context: FakeContext) -> None:
    context.fake.fail["list_projects"] = HostFailure("LXD stopped answering; check that LXD runs.")

    findings = reconcile.reconcile_once(context)

    assert findings == ["reconcile failed: LXD stopped answering; check that LXD runs."]


def test_operations_a_stopped_daemon_left_running_read_as_failed(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = context.database.operations.create("create environment", "alice/web")
    legacy = context.database.operations.create("create environment", "alice/db")
    # A row written by an older daemon holds the bare sentence rather than an API body.
    context.database.operations.update(legacy.id, status="failed", error="It stopped; retry.")
    monkeypatch.setattr(reconcile, "run_every", lambda name, interval, action: None)
    reconcile.start_reconciler(context)
    shown = context.operations.get(lost.id)
    assert shown.status == "failed"
    assert stored_error_body(shown.error) == {
        "error": "HostFailure",
        "message": "The cloche daemon stopped during this operation; run it again.",
    }
    assert stored_error_body(context.operations.get(legacy.id).error) == {
        "error": "HostFailure",
        "message": "It stopped; retry.",
    }


def test_a_guest_claiming_another_address_is_reported_once_and_never_adopted(
    tmp_path: Path,
) -> None:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        wait_operation(context, environments.request_create(context, "alice", new_env("web")))
        assigned = context.database.environments.get("alice", "web").address
        instance = context.fake.instances["cloche-alice"]["web"]
        assert check_addresses(context) == []  # positive control: the assigned address alone
        # Root inside lists another address first (networkd), as an attacker would.
        instance.extra_addresses = ("10.120.0.250",)
        instance.ipv4 = "10.120.0.250"
        (finding,) = check_addresses(context)
        assert "alice/web reports 10.120.0.250" in finding
        check_addresses(context)
        assert len(events(context, "found address mismatch")) == 1
        assert context.address_mismatches == [finding]
        shown = environments.environment_info(context, "alice", "web")
        assert shown.address == assigned  # the record's, never the guest's
        assert context.database.environments.get("alice", "web").address == assigned


def _stopped_behind_clouds_back(context: FakeContext, name: str) -> None:
    """The instance is stopped as after a reboot, while cloche last left it running."""
    instance = context.fake.instances["cloche-alice"][name]
    instance.info = dataclasses.replace(instance.info, status="Stopped")


def test_at_start_the_daemon_starts_what_it_left_running_once_the_firewall_is_loaded(
    tmp_path: Path,
) -> None:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        for name in ("web", "db"):
            wait_operation(context, environments.request_create(context, "alice", new_env(name)))
        stop = environments.request_action(context, "alice", "alice", "db", "stop")
        wait_operation(context, stop)
        _stopped_behind_clouds_back(context, "web")
        instance = context.fake.instances["cloche-alice"]["web"]
        assert instance.info.config["boot.autostart"] == "false"  # LXD leaves it to cloche
        reconcile.reconcile_once(context)  # a periodic pass does not start anything
        assert not instance.info.running
        firewall = context.host.firewall
        firewall.table = None  # type: ignore[attr-defined]  # a boot: no table yet
        table_at_start: list[bool] = []
        context.fake.before["start"] = lambda project, *args: table_at_start.append(
            firewall.current() is not None
        )
        findings = reconcile.reconcile_once(context, startup=True)
        assert "started alice/web (it was running before LXD stopped)" in findings
        assert instance.info.running
        assert not context.fake.instances["cloche-alice"]["db"].info.running  # stopped by cloche
        assert [event.target for event in events(context, "started environment")][-1] == (
            "alice/web"
        )
        assert table_at_start == [True]  # the table was loaded before the start


def test_with_no_firewall_the_daemon_starts_nothing(tmp_path: Path) -> None:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        wait_operation(context, environments.request_create(context, "alice", new_env("web")))
        _stopped_behind_clouds_back(context, "web")
        # A boot: no table, and loading it fails.
        context.host.firewall.table = None  # type: ignore[attr-defined]
        context.host.firewall.refuse = "syntax error"  # type: ignore[attr-defined]
        findings = reconcile.reconcile_once(context, startup=True)
        assert "started no environment: the firewall is not loaded (fail closed)" in findings
        assert not context.fake.instances["cloche-alice"]["web"].info.running
        context.host.firewall.refuse = None  # type: ignore[attr-defined]
        reconcile.reconcile_once(context, startup=True)  # positive control: loaded, started
        assert context.fake.instances["cloche-alice"]["web"].info.running


def test_an_instance_lxd_would_autostart_is_set_back_to_cloche_starting_it(
    tmp_path: Path,
) -> None:
    with fake_context(tmp_path) as context:
        add_user(context, "alice")
        wait_operation(context, environments.request_create(context, "alice", new_env("web")))
        instance = context.fake.instances["cloche-alice"]["web"]
        config = {**instance.info.config, "boot.autostart": "true"}
        instance.info = dataclasses.replace(instance.info, config=config)
        reconcile.reconcile_once(context)
        assert instance.info.config["boot.autostart"] == "false"
        assert events(context, "repaired devices")[-1].details == {"config": ["boot.autostart"]}
