"""core.snapshots and the snapshot scheduler against the fakes: one audit event per action."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloche.api.app import create_app
from cloche.core import environments, snapshots
from cloche.core.snapshot_scheduler import schedule_once
from cloche.model.config import ClocheConfig, SnapshotsConfig
from cloche.model.errors import Conflict, Invalid, NotFound, QuotaExceeded
from cloche.model.snapshots import RetentionPolicy
from cloche.render.snapshot_plan import jitter_for
from tests.unit.callers import header_caller
from tests.unit.fakes import (
    GIB,
    HOST_KEYS,
    FakeContext,
    TestClient,
    add_user,
    events,
    fake_context,
    new_env,
    wait_operation,
)

PROJECT = "cloche-alice"
NOW = datetime(2026, 11, 22, 19, 20, tzinfo=UTC)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        add_user(context, "alice", max_envs=2, cpu=4, memory_bytes=8 * GIB, disk_bytes=50 * GIB)
        operation = environments.request_create(
            context,
            "alice",
            new_env(),
        )
        assert wait_operation(context, operation).status == "succeeded"
        context.fake.calls.clear()
        yield context


def actions(context: FakeContext) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.outcome) for e in events(context) if e.actor != "admin-test"][1:]


def test_a_labelled_snapshot_is_taken_listed_and_audited_once(context: FakeContext) -> None:
    taken = snapshots.take_snapshot(context, "alice", "alice", "web", "before-upgrade")
    assert taken.name == "before-upgrade"
    assert taken.kind == "manual"
    listed = snapshots.list_snapshots(context, "alice", "web")
    assert [item.name for item in listed] == ["before-upgrade"]
    assert actions(context) == [("took snapshot", "alice/web", "succeeded")]
    assert events(context)[-1].details == {"snapshot": "before-upgrade"}


def test_an_unlabelled_snapshot_is_named_after_the_utc_time(context: FakeContext) -> None:
    taken = snapshots.take_snapshot(context, "alice", "alice", "web")
    assert taken.name.startswith("manual-")
    assert len(taken.name) == len("manual-20261122T191502Z")
    assert taken.kind == "manual"


@pytest.mark.parametrize(
    "label", ["auto-1", "Upper", "has space", "a/b", "x" * 41, "", "nightly\n"]
)
def test_bad_labels_are_refused_and_audited_as_failed(context: FakeContext, label: str) -> None:
    with pytest.raises(Invalid):
        snapshots.take_snapshot(context, "alice", "alice", "web", label)
    assert actions(context) == [("took snapshot", "alice/web", "failed")]
    assert "snapshot" not in context.fake.methods(PROJECT)


def test_a_taken_name_and_a_missing_environment_are_refused(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "one")
    with pytest.raises(Conflict):
        snapshots.take_snapshot(context, "alice", "alice", "web", "one")
    with pytest.raises(NotFound):
        snapshots.take_snapshot(context, "alice", "alice", "nope", "one")


def test_remove_deletes_one_snapshot_with_one_event(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "one")
    snapshots.remove_snapshot(context, "alice", "alice", "web", "one")
    assert snapshots.list_snapshots(context, "alice", "web") == []
    with pytest.raises(NotFound):
        snapshots.remove_snapshot(context, "alice", "alice", "web", "one")
    assert actions(context)[1:] == [
        ("removed snapshot", "alice/web", "succeeded"),
        ("removed snapshot", "alice/web", "failed"),
    ]


def test_restore_in_place_restarts_waits_and_reapplies_todays_limits_and_keys(
    context: FakeContext,
) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "good")
    context.fake.calls.clear()
    operation = snapshots.request_restore(context, "alice", "alice", "web", "good")
    assert wait_operation(context, operation).status == "succeeded"
    methods = context.fake.methods(PROJECT)
    assert methods.index("restore_snapshot") < methods.index("set_limits")
    assert methods.index("set_limits") < methods.index("wait_until_booted")
    assert "exec" in methods[methods.index("wait_until_booted") :]  # keys installed after boot
    assert actions(context)[1:] == [("restored environment", "alice/web", "succeeded")]
    assert context.database.environments.get("alice", "web").host_keys == HOST_KEYS


def test_restore_of_a_missing_snapshot_fails_before_any_operation(context: FakeContext) -> None:
    with pytest.raises(NotFound):
        snapshots.request_restore(context, "alice", "alice", "web", "nope")
    assert "restore_snapshot" not in context.fake.methods(PROJECT)
    assert actions(context) == [("restored environment", "alice/web", "failed")]


def test_a_failed_boot_after_restore_is_one_failed_event(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "good")
    context.fake.fail_boot = True
    operation = snapshots.request_restore(context, "alice", "alice", "web", "good")
    assert wait_operation(context, operation).status == "failed"
    assert actions(context)[1:] == [("restored environment", "alice/web", "failed")]


def test_restore_as_new_makes_a_ready_env_with_its_own_address(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "good")
    source = context.database.environments.get("alice", "web")
    operation = snapshots.request_restore_as_new(context, "bob", "alice", "web", "good", "copy")
    assert wait_operation(context, operation).status == "succeeded"
    copy = context.database.environments.get("alice", "copy")
    assert copy.status == "ready"
    assert copy.address is not None
    assert copy.address != source.address
    assert (copy.cpu, copy.memory_bytes, copy.disk_bytes) == (1, GIB, 10 * GIB)
    assert copy.host_keys == HOST_KEYS
    (call,) = context.fake.calls_of("create_from_snapshot")
    request = call.args[0]
    assert request["source"] == {"type": "copy", "source": "web/good", "instance_only": True}
    assert request["devices"]["eth0"]["ipv4.address"] == copy.address
    assert f"{copy.address}:22" in context.host.jump_accounts.allowed["alice"]  # type: ignore[attr-defined]
    assert actions(context)[1:] == [("restored environment as new", "alice/copy", "succeeded")]
    assert events(context)[-1].actor == "bob"


def test_restore_as_new_checks_name_and_quota_before_recording(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "good")
    with pytest.raises(Conflict):
        snapshots.request_restore_as_new(context, "alice", "alice", "web", "good", "web")
    with pytest.raises(NotFound):
        snapshots.request_restore_as_new(context, "alice", "alice", "web", "nope", "other")
    context.database.users.update_quotas("alice", cpu=1)
    with pytest.raises(QuotaExceeded):
        snapshots.request_restore_as_new(context, "alice", "alice", "web", "good", "other")
    assert [env.name for env in context.database.environments.list("alice")] == ["web"]
    assert [outcome for _, _, outcome in actions(context)[1:]] == ["failed"] * 3


def test_restore_as_new_that_fails_to_boot_leaves_nothing(context: FakeContext) -> None:
    snapshots.take_snapshot(context, "alice", "alice", "web", "good")
    context.fake.fail_boot = True
    operation = snapshots.request_restore_as_new(context, "alice", "alice", "web", "good", "copy")
    assert wait_operation(context, operation).status == "failed"
    assert [env.name for env in context.database.environments.list("alice")] == ["web"]
    assert "copy" not in context.fake.instance_names(PROJECT)
    assert actions(context)[1:] == [("restored environment as new", "alice/copy", "failed")]


def test_policy_overrides_persist_and_merge_with_the_host_defaults(context: FakeContext) -> None:
    policy = snapshots.set_snapshot_policy(context, "alice", "alice", "web", {"hourly": 48})
    assert policy.overrides == {"hourly": 48}
    assert policy.effective == RetentionPolicy(
        quarter_hourly=4, hourly=48, daily=14, weekly=0, monthly=3
    )
    assert context.database.environments.get("alice", "web").snapshot_policy == {"hourly": 48}
    snapshots.set_snapshot_policy(context, "alice", "alice", "web", {"daily": 0})
    assert snapshots.snapshot_policy(context, "alice", "web").overrides == {
        "daily": 0,
        "hourly": 48,
    }
    reset = snapshots.set_snapshot_policy(context, "alice", "alice", "web", {}, reset=True)
    assert reset.overrides == {}
    assert context.database.environments.get("alice", "web").snapshot_policy is None
    with pytest.raises(Invalid):
        snapshots.set_snapshot_policy(context, "alice", "alice", "web", {"hourly": -1})
    with pytest.raises(Invalid):
        snapshots.set_snapshot_policy(context, "alice", "alice", "web", {"yearly": 1})
    assert [a for a, _, _ in actions(context)] == ["set snapshot policy"] * 5


def test_effective_policy_takes_the_host_config() -> None:
    host = SnapshotsConfig(quarter_hourly=0, hourly=2, daily=1, weekly=1, monthly=0)
    assert snapshots.effective_policy(host, {"monthly": 5}) == RetentionPolicy(0, 2, 1, 1, 5)
    assert snapshots.effective_policy(SnapshotsConfig()) == RetentionPolicy()


# The scheduler -------------------------------------------------------------------------------


def test_a_pass_takes_one_scheduled_snapshot_and_keeps_manual_ones(context: FakeContext) -> None:
    context.fake.now = NOW
    snapshots.take_snapshot(context, "alice", "alice", "web", "mine")
    applied = schedule_once(context, NOW)
    plan = applied["alice/web"]
    assert plan.create is not None
    assert plan.create.startswith("auto-")
    names = [item.name for item in snapshots.list_snapshots(context, "alice", "web")]
    assert "mine" in names
    assert plan.create in names
    scheduler = [e for e in events(context) if e.actor == "cloche-scheduler"]
    assert [(e.action, e.outcome) for e in scheduler] == [("took snapshot", "succeeded")]
    # The same slot again: nothing to do.
    assert schedule_once(context, NOW + timedelta(seconds=30))["alice/web"].create is None


def test_a_pass_prunes_what_the_policy_drops_with_one_event_each(context: FakeContext) -> None:
    snapshots.set_snapshot_policy(
        context,
        "alice",
        "alice",
        "web",
        {"quarter_hourly": 2, "hourly": 0, "daily": 0, "monthly": 0},
    )
    start = NOW - timedelta(hours=2)
    for slot in range(8):  # one pass per slot for two hours
        context.fake.now = start + jitter_for("alice/web") + slot * timedelta(minutes=15)
        schedule_once(context, context.fake.now)
    left = [item.name for item in snapshots.list_snapshots(context, "alice", "web")]
    assert len(left) == 2
    scheduler = [e.action for e in events(context) if e.actor == "cloche-scheduler"]
    assert scheduler.count("took snapshot") == 8
    assert scheduler.count("removed snapshot") == 6


def test_after_downtime_one_pass_takes_one_snapshot_not_one_per_missed_slot(
    context: FakeContext,
) -> None:
    context.fake.now = NOW - timedelta(days=3)
    schedule_once(context, context.fake.now)
    context.fake.calls.clear()
    context.fake.now = NOW
    schedule_once(context, NOW)
    assert len(context.fake.calls_of("snapshot")) == 1


def test_stopped_and_unready_environments_and_a_disabled_host_are_left_alone(
    tmp_path: Path, context: FakeContext
) -> None:
    context.user_instances("alice").stop("web")
    assert schedule_once(context, NOW) == {}
    context.user_instances("alice").start("web")
    context.config = ClocheConfig(snapshots=SnapshotsConfig(enabled=False))
    assert schedule_once(context, NOW) == {}
    assert context.fake.calls_of("snapshot") == []


def test_one_failing_environment_does_not_stop_the_pass(context: FakeContext) -> None:
    add_user(context, "bob")
    operation = environments.request_create(
        context,
        "bob",
        new_env("api", user="bob"),
    )
    assert wait_operation(context, operation).status == "succeeded"
    context.fake.fail["list_snapshots"] = Conflict("LXD is busy; retry.")
    assert schedule_once(context, NOW) == {}
    del context.fake.fail["list_snapshots"]
    assert set(schedule_once(context, NOW)) == {"alice/web", "bob/api"}


# The API routes ------------------------------------------------------------------------------


def test_the_snapshot_routes_win_over_the_environment_actions(context: FakeContext) -> None:
    actor = {"X-Test-Admin": "carol"}
    base = "/v1/environments/alice/web"
    with TestClient(create_app(context, header_caller)) as client:
        taken = client.post(f"{base}/snapshots", json={"label": "one"}, headers=actor)
        assert taken.status_code == 201, taken.text
        assert client.get(f"{base}/snapshots").json()[0]["name"] == "one"
        bad = client.post(f"{base}/snapshots", json={"label": "auto-x"}, headers=actor)
        assert bad.status_code == 422
        assert bad.json()["error"] == "Invalid"
        answer = client.post(f"{base}/snapshots/one/restore", json={}, headers=actor)
        assert answer.status_code == 202
        assert wait_operation(context, answer.json()["operation"]).status == "succeeded"
        policy = client.patch(f"{base}/snapshot-policy", json={"hourly": 48}, headers=actor)
        assert policy.json()["effective"]["hourly"] == 48
        assert client.get(f"{base}/snapshot-policy").json()["overrides"] == {"hourly": 48}
        assert client.patch(f"{base}/snapshot-policy", json={"hourly": -1}).status_code == 422
        removed = client.delete(f"{base}/snapshots/one", headers=actor)
        assert removed.status_code == 200
        assert client.delete(f"{base}/snapshots/one").status_code == 404
    assert events(context)[-2].actor == "carol"
