"""core.environments against the fakes: create, quota, names, resize, rm and exec."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.core import environments
from cloche.model.commands import LimitChanges
from cloche.model.errors import Conflict, Invalid, NotFound, QuotaExceeded
from cloche.model.limits import Limits
from cloche.model.names import ENV_RULE, USER_RULE
from cloche.render.image import image_alias
from cloche.render.instance import template_name
from tests.unit.fakes import (
    GIB,
    HOST_KEYS,
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
        add_user(context, "alice", max_envs=3, cpu=4, memory_bytes=8 * GIB, disk_bytes=50 * GIB)
        context.fake.calls.clear()
        yield context


def create(context: FakeContext, name: str = "web", **limits: int) -> None:
    """Create an environment and wait until it is ready."""
    operation_id = environments.request_create(context, "alice", new_env(name, **limits))
    assert wait_operation(context, operation_id).status == "succeeded"


# Create ----------------------------------------------------------------------------------------


def test_static_addresses_are_distinct_and_reused_after_removal(context: FakeContext) -> None:
    for name in ("one", "two"):
        wait_operation(context, environments.request_create(context, "alice", new_env(name=name)))
    addresses = {env.name: env.address for env in context.database.environments.list("alice")}
    assert addresses == {"one": "10.120.0.10", "two": "10.120.0.11"}
    wait_operation(context, environments.request_remove(context, "alice", "alice", "one"))
    wait_operation(context, environments.request_create(context, "alice", new_env(name="three")))
    assert context.database.environments.get("alice", "three").address == "10.120.0.10"


def test_create_records_creating_then_ready_with_address_and_host_keys(
    context: FakeContext,
) -> None:
    seen: list[str] = []
    context.fake.before["ensure_template"] = lambda project, request: seen.append(
        context.database.environments.get("alice", "web").status
    )

    operation_id = environments.request_create(context, "alice", new_env())
    operation = wait_operation(context, operation_id)

    assert seen == ["creating"]
    assert operation.status == "succeeded"
    assert operation.error is None
    record = context.database.environments.get("alice", "web")
    assert record.status == "ready"
    instance = context.fake.instances[PROJECT]["web"]
    assert instance.info.running
    # A static address on the bridge, recorded before the instance exists and set on its NIC.
    assert record.address == "10.120.0.10"
    assert instance.info.devices["eth0"]["ipv4.address"] == record.address
    assert record.state_hint == "Running"
    assert record.host_keys == HOST_KEYS
    # The jump account may now forward to exactly this environment's port 22.
    assert context.host.jump_accounts.allowed["alice"] == ["10.120.0.10:22"]  # type: ignore[attr-defined]
    created = events(context, "created environment")
    assert [(e.actor, e.target, e.outcome) for e in created] == [
        ("alice", "alice/web", "succeeded")
    ]
    assert len(events(context)) == 2  # the user's "added user" and this one


def test_create_ensures_the_template_then_copies_it(context: FakeContext) -> None:
    create(context, "web")
    create(context, "db")

    template = template_name(image_alias(context.config.image.release))
    methods = context.fake.methods(PROJECT)
    # Per environment: the template is ensured before the copy, then the copy boots.
    for name in ("web", "db"):
        copies = [
            i
            for i, call in enumerate(context.fake.calls)
            if call.method == "create_from_template" and call.args[0]["name"] == name
        ]
        assert len(copies) == 1
        before = [call.method for call in context.fake.calls[: copies[0]]]
        assert "ensure_template" in before
        request = context.fake.calls[copies[0]].args[0]
        assert request["source"] == {"type": "copy", "source": template, "instance_only": True}
    assert methods.count("ensure_template") == 2
    # Nothing is ever created straight from the image by the environments' use case.
    assert context.fake.calls_of("create") == []
    assert context.fake.instance_names(PROJECT) == sorted(["db", "web", template])
    assert not context.fake.instances[PROJECT][template].info.running
    # The key setup ran as root with the user's keys on stdin.
    setups = [
        call
        for call in context.fake.calls_of("exec")
        if call.args[0] == "web" and call.args[1][:2] == ["sh", "-c"]
    ]
    assert setups[0].kwargs["stdin"] is not None
    assert b"ssh-ed25519" in setups[0].kwargs["stdin"]


def test_boot_failure_fails_the_operation_and_leaves_nothing(context: FakeContext) -> None:
    context.fake.fail_boot = True

    operation_id = environments.request_create(context, "alice", new_env())
    operation = wait_operation(context, operation_id)

    assert operation.status == "failed"
    assert operation.error is not None
    error = json.loads(operation.error)
    assert error["error"] == "HostFailure"
    assert "stopped while booting" in error["message"]
    # Reported with the tail of the console log, never as created.
    assert (
        "Last console lines: systemd 252 running in system mode | Failed to mount /proc | "
        "Kernel panic" in error["message"]
    )
    assert "web" not in context.fake.instance_names(PROJECT)
    assert "delete" in context.fake.methods(PROJECT)
    with pytest.raises(NotFound):
        context.database.environments.get("alice", "web")
    created = events(context, "created environment")
    assert len(created) == 1
    assert created[0].outcome == "failed"
    assert "stopped while booting" in str(created[0].details["error"])


def test_max_envs_reached_is_refused_before_any_runtime_call(context: FakeContext) -> None:
    for name in ("one", "two", "three"):
        create(context, name)
    context.fake.calls.clear()
    before = len(events(context))

    with pytest.raises(QuotaExceeded, match="3 of 3 allowed environments"):
        environments.request_create(context, "alice", new_env("four"))

    assert context.fake.calls == []
    new_events = events(context)[before:]
    assert [(e.action, e.target, e.outcome) for e in new_events] == [
        ("created environment", "alice/four", "failed")
    ]
    assert context.database.environments.count("alice") == 3


@pytest.mark.parametrize(
    ("limits", "label"),
    [
        ({"cpu": 5}, "CPUs"),
        ({"memory_bytes": 9 * GIB}, "memory"),
        ({"disk_bytes": 51 * GIB}, "disk"),
    ],
)
def test_resources_over_quota_are_refused_naming_the_limit(
    context: FakeContext, limits: dict[str, int], label: str
) -> None:
    with pytest.raises(QuotaExceeded, match=f" {label} in all, over the quota"):
        environments.request_create(context, "alice", new_env(**limits))
    assert context.fake.calls == []
    assert context.database.environments.count("alice") == 0
    assert [e.outcome for e in events(context, "created environment")] == ["failed"]


def test_quota_counts_the_other_environments(context: FakeContext) -> None:
    create(context, "one", cpu=3)
    with pytest.raises(QuotaExceeded, match="5 CPUs in all"):
        environments.request_create(context, "alice", new_env("two", cpu=2))


def test_duplicate_name_is_a_conflict(context: FakeContext) -> None:
    create(context, "web")
    context.fake.calls.clear()
    with pytest.raises(Conflict, match="already exists"):
        environments.request_create(context, "alice", new_env("web"))
    assert context.fake.calls == []


@pytest.mark.parametrize("name", ["Web", "1web", "web-", "we_b", "", "x" * 41])
def test_invalid_environment_names_state_the_rule(context: FakeContext, name: str) -> None:
    with pytest.raises(Invalid) as caught:
        environments.request_create(context, "alice", new_env(name))
    assert ENV_RULE in str(caught.value)
    assert context.fake.calls == []
    assert events(context, "created environment")[-1].outcome == "failed"


@pytest.mark.parametrize("name", ["tmpl-web", "template"])
def test_reserved_environment_names_are_refused(context: FakeContext, name: str) -> None:
    with pytest.raises(Invalid, match="reserved"):
        environments.request_create(context, "alice", new_env(name))


@pytest.mark.parametrize("image", ["\ud800", "cloche/bookworm\n", "a b", "x" * 201])
def test_an_invalid_image_alias_is_refused_before_anything_is_recorded(
    context: FakeContext, image: str
) -> None:
    command = dataclasses.replace(new_env("web"), image=image)
    with pytest.raises(Invalid, match="is not a valid image alias"):
        environments.request_create(context, "alice", command)
    assert context.database.environments.count("alice") == 0
    assert context.fake.calls == []


def test_invalid_user_name_states_the_rule(context: FakeContext) -> None:
    with pytest.raises(Invalid) as caught:
        environments.request_create(context, "alice", new_env(user="Alice"))
    assert USER_RULE in str(caught.value)


def test_unknown_user_is_not_found(context: FakeContext) -> None:
    with pytest.raises(NotFound, match="bob"):
        environments.request_create(context, "alice", new_env(user="bob"))


# Resize, rm, exec ------------------------------------------------------------------------------


def test_resize_within_quota_sets_limits_and_updates_the_record(context: FakeContext) -> None:
    create(context, "web")
    context.fake.calls.clear()

    shown = environments.resize(
        context, "alice", "alice", "web", LimitChanges(cpu=2, memory_bytes=2 * GIB)
    )

    record = context.database.environments.get("alice", "web")
    assert (record.cpu, record.memory_bytes, record.disk_bytes) == (2, 2 * GIB, 10 * GIB)
    [call] = context.fake.calls_of("set_limits")
    assert call.args == (
        "web",
        Limits(cpu=2, memory_bytes=2 * GIB, disk_bytes=10 * GIB, processes=record.processes),
    )
    assert shown.record.cpu == 2
    assert shown.record.memory_bytes == 2 * GIB
    resized = events(context, "resized environment")
    assert [e.outcome for e in resized] == ["succeeded"]


def test_resize_beyond_quota_is_refused_and_changes_nothing(context: FakeContext) -> None:
    create(context, "web")
    before = context.database.environments.get("alice", "web")
    context.fake.calls.clear()

    with pytest.raises(QuotaExceeded, match="memory"):
        environments.resize(context, "alice", "alice", "web", LimitChanges(memory_bytes=9 * GIB))

    assert context.database.environments.get("alice", "web") == before
    assert context.fake.calls_of("set_limits") == []
    assert [e.outcome for e in events(context, "resized environment")] == ["failed"]


def test_rm_deletes_the_instance_then_the_record(context: FakeContext) -> None:
    create(context, "web")
    address = context.database.environments.get("alice", "web").address
    context.fake.calls.clear()
    status_at_delete: list[str] = []
    context.fake.before["delete"] = lambda project, name: status_at_delete.append(
        context.database.environments.get("alice", name).status
    )

    operation_id = environments.request_remove(context, "alice", "alice", "web")

    assert wait_operation(context, operation_id).status == "succeeded"
    assert status_at_delete == ["deleting"]
    assert "web" not in context.fake.instance_names(PROJECT)
    # The released address keeps no tracked flow for whoever gets it next.
    assert context.host.firewall.forgotten == [address]  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        context.database.environments.get("alice", "web")
    assert [e.outcome for e in events(context, "removed environment")] == ["succeeded"]


def test_rm_keeps_the_record_when_the_instance_cannot_be_deleted(context: FakeContext) -> None:
    from cloche.model.errors import HostFailure

    create(context, "web")
    context.fake.fail["delete"] = HostFailure("LXD refused to delete 'web'; check LXD.")

    operation_id = environments.request_remove(context, "alice", "alice", "web")

    assert wait_operation(context, operation_id).status == "failed"
    assert context.database.environments.get("alice", "web").status == "deleting"
    assert [e.outcome for e in events(context, "removed environment")] == ["failed"]


def test_exec_as_the_user_passes_uid_1000_and_the_home(context: FakeContext) -> None:
    create(context, "web")
    context.fake.calls.clear()

    result = environments.execute(
        context, "alice", "alice", "web", ["id", "-u"], stdin=b"in", as_root=False
    )

    assert result.ok
    [call] = context.fake.calls_of("exec")
    assert call.args == ("web", ["id", "-u"])
    assert call.kwargs["user"] == 1000
    assert call.kwargs["group"] == 1000
    assert call.kwargs["cwd"] == "/home/alice"
    assert call.kwargs["stdin"] == b"in"
    assert call.kwargs["environment"]["HOME"] == "/home/alice"
    assert call.kwargs["environment"]["USER"] == "alice"
    [ran] = events(context, "ran command in environment")
    assert ran.details == {"command": "id -u", "root": False}


def test_exec_as_root_passes_no_user(context: FakeContext) -> None:
    create(context, "web")
    context.fake.calls.clear()

    environments.execute(context, "alice", "alice", "web", ["whoami"], stdin=b"", as_root=True)

    [call] = context.fake.calls_of("exec")
    assert call.kwargs["user"] is None
    assert call.kwargs["group"] is None
    assert call.kwargs["cwd"] is None
    assert [e.details["root"] for e in events(context, "ran command in environment")] == [True]


def test_info_reports_missing_when_the_instance_is_gone(context: FakeContext) -> None:
    create(context, "web")
    del context.fake.instances[PROJECT]["web"]
    assert environments.environment_info(context, "alice", "web").state == "Missing"


def test_stop_action_stops_and_records_the_state(context: FakeContext) -> None:
    create(context, "web")
    operation_id = environments.request_action(context, "alice", "alice", "web", "stop")
    assert wait_operation(context, operation_id).status == "succeeded"
    assert not context.fake.instances[PROJECT]["web"].info.running
    assert context.database.environments.get("alice", "web").state_hint == "Stopped"
    with pytest.raises(Invalid, match="not an action"):
        environments.request_action(context, "alice", "alice", "web", "explode")
