"""The time machine through the real CLI, daemon and LXD: snapshot, restore, scheduler, policy."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cloche.render.instance import project_name
from tests.integration.cloche_cli import cloche, cloche_json, cloche_ok
from tests.integration.conftest import lxc
from tests.integration.test_environments import STATE_DIR, audit_events, make_user, remove_user

DATA_SCRIPT = "head -c 5M /dev/urandom > /root/data; sha256sum /root/data"
SCHEDULER_WAIT_SECONDS = 240


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up and the daemon runs the code under test."""
    cloche_ok("host", "init")


@pytest.fixture(scope="module")
def owner() -> Iterator[str]:
    """A user with one running environment 'main' and room for two more."""
    name = make_user("--max-envs", "3", "--cpu", "3", "--memory", "4GiB", "--disk", "40GiB")
    try:
        cloche_ok("create", f"{name}/main", "--cpu", "1", "--memory", "1GiB")
        yield name
    finally:
        remove_user(name)


def root_sh(address: str, script: str) -> str:
    """Run a shell script as root in an environment and return its output."""
    return cloche_ok("exec", address, "--root", "--", "sh", "-c", script).strip()


def snapshot_names(address: str) -> list[str]:
    return [item["name"] for item in cloche_json("snapshots", address)]


def lxd_instance(user: str, name: str) -> dict[str, Any]:
    answer = lxc("query", f"/1.0/instances/{name}?project={project_name(user)}")
    instance: dict[str, Any] = json.loads(answer.stdout)
    return instance


def test_restore_in_place_brings_a_deleted_file_back(owner: str) -> None:
    address = f"{owner}/main"
    checksum = root_sh(address, DATA_SCRIPT).split()[0]
    assert "took snapshot with-data" in cloche_ok("snapshot", address, "with-data")
    root_sh(address, "rm /root/data; sync")
    assert root_sh(address, "ls /root") == ""
    restored = cloche_ok("restore", address, "with-data")
    assert f"restored {address} to with-data" in restored
    assert root_sh(address, "sha256sum /root/data").split()[0] == checksum
    info = cloche_json("info", address)
    assert (info["state"], info["status"]) == ("Running", "ready")
    assert root_sh(address, "systemctl is-system-running") in ("running", "degraded")
    restores = [e for e in audit_events(address) if e["action"] == "restored environment"]
    assert [e["outcome"] for e in restores] == ["succeeded"]


def test_restore_as_new_gives_a_second_environment_its_own_identity(owner: str) -> None:
    address = f"{owner}/main"
    if "with-data" not in snapshot_names(address):
        cloche_ok("snapshot", address, "with-data")
    copy = f"{owner}/copy"
    try:
        cloche_ok("restore", address, "with-data", "--as-new", "copy")
        original, twin = cloche_json("info", address), cloche_json("info", copy)
        assert original["state"] == twin["state"] == "Running"
        assert twin["status"] == "ready"
        assert twin["address"] != original["address"]
        assert twin["limits"] == original["limits"]
        macs = [
            lxd_instance(owner, name)["config"]["volatile.eth0.hwaddr"] for name in ("main", "copy")
        ]
        assert macs[0] != macs[1]
        assert lxd_instance(owner, "copy")["devices"]["eth0"]["ipv4.address"] == twin["address"]
        machine_ids = [root_sh(a, "cat /etc/machine-id") for a in (address, copy)]
        assert all(len(machine_id) == 32 for machine_id in machine_ids)
        assert machine_ids[0] != machine_ids[1]
        assert twin["host_keys"]
        assert set(twin["host_keys"]) == set(original["host_keys"])
        for kind, key in twin["host_keys"].items():
            assert key != original["host_keys"][kind]
        # The copy holds the snapshot's files and answers with its new keys.
        assert root_sh(copy, "test -s /root/data && hostname") == "copy"
        assert twin["host_keys"]["ssh-ed25519"].split()[1] in root_sh(
            copy, "cat /etc/ssh/ssh_host_ed25519_key.pub"
        )
    finally:
        cloche("rm", copy, "--yes")


def test_a_scheduler_pass_prunes_scheduled_snapshots_and_keeps_manual_ones(owner: str) -> None:
    address = f"{owner}/main"
    project = project_name(owner)
    # Keep one 15-minute snapshot and nothing else, so the next pass has something to prune.
    cloche_ok(
        "snapshot", "policy", address, "--quarter-hourly", "1", "--hourly", "0", "--daily", "0"
    )
    cloche_ok("snapshot", "policy", address, "--monthly", "0")
    cloche_ok("snapshot", address, "keep-me")
    # Two scheduled-looking snapshots in the current slot (LXD dates them now).
    for name in ("auto-20200101T0000Z", "auto-20200101T0015Z"):
        lxc("snapshot", "main", name, "--project", project)
    deadline = time.monotonic() + SCHEDULER_WAIT_SECONDS
    while True:
        names = snapshot_names(address)
        scheduled = [name for name in names if name.startswith("auto-")]
        if len(scheduled) == 1 or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert len(scheduled) == 1, f"no scheduler pass pruned within the wait: {names}"
    assert "keep-me" in names
    pruned = [
        e
        for e in audit_events(address)
        if e["actor"] == "cloche-scheduler" and e["action"] == "removed snapshot"
    ]
    assert pruned
    assert all(e["outcome"] == "succeeded" for e in pruned)
    cloche_ok("snapshot", "policy", address, "--reset")


def test_policy_override_persists_and_snapshot_rm_and_bad_input(owner: str) -> None:
    address = f"{owner}/main"
    cloche_ok("snapshot", "policy", address, "--hourly", "48", "--weekly", "2")
    policy = cloche_json("snapshot", "policy", address)
    assert policy["overrides"] == {"hourly": 48, "weekly": 2}
    assert policy["effective"]["hourly"] == 48
    assert policy["effective"]["daily"] == 14  # the host default
    with sqlite3.connect(f"file:{STATE_DIR / 'cloche.db'}?mode=ro", uri=True) as database:
        (stored,) = database.execute(
            "SELECT snapshot_policy FROM environments WHERE user = ? AND name = 'main'", (owner,)
        ).fetchone()
    assert json.loads(stored) == {"hourly": 48, "weekly": 2}

    cloche_ok("snapshot", address, "to-remove")
    assert "to-remove" in snapshot_names(address)
    cloche_ok("snapshot", "rm", address, "to-remove")
    assert "to-remove" not in snapshot_names(address)

    for args in (
        ("snapshot", address, "auto-mine"),
        ("snapshot", address, "Bad_Label"),
        ("snapshot", "rm", address, "to-remove"),
        ("restore", address, "no-such-snapshot"),
        ("restore", address, "keep-me", "--as-new", "main"),
    ):
        result = cloche(*args)
        assert result.returncode != 0, args
        assert result.stderr.startswith("error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cloche_json("info", address)["state"] == "Running"
