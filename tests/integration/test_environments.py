"""Environments through the real CLI, daemon and LXD: create, exec, limits, quotas, names, audit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.model.instances import ROLE_ENVIRONMENT
from cloche.render.instance import project_name
from tests.conftest import unique_suffix
from tests.integration import host_services
from tests.integration.cloche_cli import KEYS, cloche, cloche_json, cloche_ok
from tests.integration.conftest import lxc

STATE_DIR = Path("/var/lib/cloche")
AUDIT_LOG = STATE_DIR / "audit.log"


@pytest.fixture(scope="module", autouse=True)
def daemon() -> None:
    """The host is set up and the daemon runs the code under test."""
    cloche_ok("host", "init")


def make_user(*options: str) -> str:
    """Add a uniquely named user with the test key."""
    name = f"t{unique_suffix()}"
    cloche_ok("user", "add", name, "--ssh-key", str(KEYS / "ed25519.pub"), *options)
    return name


def remove_user(name: str) -> None:
    """Remove a user and everything of theirs, whatever state the test left."""
    cloche("user", "rm", name, "--purge", "--yes")
    # If the daemon could not do it, clean LXD directly so the machine stays clean.
    project = project_name(name)
    listed = lxc("list", "--project", project, "--format", "csv", "-c", "n", check=False)
    for instance in listed.stdout.split():
        lxc("delete", instance, "--project", project, "--force", check=False)
    for profile in ("standard", "docker", "strict"):
        lxc("profile", "delete", profile, "--project", project, check=False)
    lxc("project", "delete", project, check=False)


@pytest.fixture(scope="module")
def owner() -> Iterator[str]:
    """A user with room for a few environments, and one running environment 'main'."""
    name = make_user("--max-envs", "4", "--cpu", "4", "--memory", "6GiB", "--disk", "40GiB")
    try:
        cloche_ok(
            "create", f"{name}/main", "--cpu", "2", "--memory", "1536MiB", "--processes", "300"
        )
        yield name
    finally:
        remove_user(name)


def audit_events(target_prefix: str) -> list[dict[str, object]]:
    """Audit events whose target starts with target_prefix, read from the log itself."""
    events = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        if str(event["target"]).startswith(target_prefix):
            events.append(event)
    return events


def exec_as_user(address: str, script: str) -> str:
    """Run a shell script in an environment as its owner and return its output."""
    return cloche_ok("exec", address, "--", "sh", "-c", script).strip()


def test_create_gives_a_running_environment_with_user_sudo_hostname_and_limits(
    owner: str,
) -> None:
    address = f"{owner}/main"
    assert exec_as_user(address, "hostname") == "main"
    assert exec_as_user(address, "id -un") == owner
    assert exec_as_user(address, "sudo -n true && echo sudo-works") == "sudo-works"
    assert exec_as_user(address, "nproc") == "2"
    meminfo = exec_as_user(address, "grep MemTotal /proc/meminfo")
    assert meminfo.split()[1] == str(1536 * 1024), meminfo
    pids = exec_as_user(
        address, "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
    )
    assert pids == "300"
    info = cloche_json("info", address)
    assert info["state"] == "Running"
    assert info["status"] == "ready"
    assert info["address"].startswith("10.")
    assert info["image"] == "cloche/bookworm"
    assert info["profile"] == "standard"
    assert info["limits"] == {"cpu": 2, "memory": "1536MiB", "disk": "10GiB", "processes": 300}
    assert "ssh-ed25519" in info["host_keys"]


def test_exec_passes_stdin_stdout_stderr_and_exit_status(owner: str) -> None:
    result = cloche(
        "exec",
        f"{owner}/main",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z; echo oops >&2; exit 7",
        input_text="hello\n",
    )
    assert result.returncode == 7
    assert result.stdout == "HELLO\n"
    assert result.stderr == "oops\n"
    root = cloche("exec", f"{owner}/main", "--root", "--", "id", "-u")
    assert root.stdout.strip() == "0"


def test_the_environment_runs_in_the_users_own_uid_range(owner: str) -> None:
    user = cloche_json("user", "show", owner)
    uid_map = exec_as_user(f"{owner}/main", "cat /proc/self/uid_map").split()
    assert uid_map[:3] == ["0", str(user["uid_base"]), str(user["uid_size"])]


def test_invalid_names_are_refused_with_the_rule(owner: str) -> None:
    for bad in ("Upper", "x" * 41, "../x", "a;rm", "a$(id)", "a b"):
        result = cloche("create", f"{owner}/{bad}")
        assert result.returncode == 2, (bad, result.stderr)
        assert "is not valid; use 1 to 40 characters" in result.stderr, (bad, result.stderr)
    empty = cloche("create", f"{owner}/")
    assert empty.returncode == 2
    duplicate = cloche("create", f"{owner}/main")
    assert duplicate.returncode == 4
    assert "already exists" in duplicate.stderr
    names = [env["name"] for env in cloche_json("list", "--user", owner)]
    assert names == ["main"]


def test_quota_refuses_a_second_environment_and_an_oversized_resize() -> None:
    user = make_user("--max-envs", "1", "--cpu", "2", "--memory", "2GiB", "--disk", "20GiB")
    try:
        cloche_ok("create", f"{user}/one")
        second = cloche("create", f"{user}/two")
        assert second.returncode == 5, second.stderr
        assert "1 of 1 allowed environments" in second.stderr
        too_big = cloche("resize", f"{user}/one", "--cpu", "3")
        assert too_big.returncode == 5, too_big.stderr
        assert "over the quota of 2" in too_big.stderr
        assert cloche_json("info", f"{user}/one")["limits"]["cpu"] == 1
        assert exec_as_user(f"{user}/one", "nproc") == "1"
        # Nothing half-made: one record, one environment instance in the project.
        assert [env["name"] for env in cloche_json("list", "--user", user)] == ["one"]
        listed = lxc("list", "--project", project_name(user), "--format", "json").stdout
        environments = [
            item["name"]
            for item in json.loads(listed)
            if item["config"].get("user.cloche.role") == ROLE_ENVIRONMENT
        ]
        assert environments == ["one"]
        cloche_ok("resize", f"{user}/one", "--cpu", "2", "--memory", "1GiB")
        assert exec_as_user(f"{user}/one", "nproc") == "2"
    finally:
        remove_user(user)


def test_stop_start_restart_and_rm(owner: str) -> None:
    address = f"{owner}/cycle"
    cloche_ok("create", address)
    cloche_ok("stop", address)
    assert cloche_json("info", address)["state"] == "Stopped"
    cloche_ok("start", address)
    assert cloche_json("info", address)["state"] == "Running"
    cloche_ok("restart", address)
    assert exec_as_user(address, "systemctl is-system-running") == "running"
    refused = cloche("rm", address)  # no terminal, no --yes
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    cloche_ok("rm", address, "--yes")
    gone = cloche("info", address)
    assert gone.returncode == 3
    assert lxc("info", "cycle", "--project", project_name(owner), check=False).returncode != 0


def test_docker_profile_allows_nesting_and_strict_does_not(owner: str) -> None:
    overlay = (
        "d=$(mktemp -d) && mkdir $d/l $d/u $d/w $d/m && echo hi > $d/l/f && "
        'unshare -rm sh -c "mount -t overlay overlay -o lowerdir=$d/l,upperdir=$d/u,'
        'workdir=$d/w $d/m && cat $d/m/f"'
    )
    cloche_ok("create", f"{owner}/dock", "--profile", "docker", "--cpu", "1")
    try:
        assert exec_as_user(f"{owner}/dock", "unshare -r true && echo ok") == "ok"
        assert exec_as_user(f"{owner}/dock", overlay) == "hi"
    finally:
        cloche_ok("rm", f"{owner}/dock", "--yes")
    cloche_ok("create", f"{owner}/tight", "--profile", "strict", "--cpu", "1")
    try:
        assert cloche("exec", f"{owner}/tight", "--", "unshare", "-r", "true").returncode != 0
        assert cloche("exec", f"{owner}/tight", "--", "sh", "-c", overlay).returncode != 0
    finally:
        cloche_ok("rm", f"{owner}/tight", "--yes")


def _consistent(user: str) -> tuple[list[str], list[str]]:
    records = sorted(env["name"] for env in cloche_json("list", "--user", user))
    listed = lxc("list", "--project", project_name(user), "--format", "json").stdout
    instances = sorted(
        item["name"]
        for item in json.loads(listed)
        if item["config"].get("user.cloche.role") == ROLE_ENVIRONMENT
    )
    return records, instances


def test_killing_the_daemon_mid_create_leaves_nothing_half_made() -> None:
    user = make_user("--max-envs", "3")
    try:
        cloche_ok("create", f"{user}/first")
        operation = cloche_ok("create", f"{user}/victim", "--no-wait").strip()
        # Kill once LXD has started copying, so both a record and an instance may exist.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = lxc("info", "victim", "--project", project_name(user), check=False)
            if probe.returncode == 0:
                break
            time.sleep(0.05)
        host_services.kill_daemon()  # systemctl kill where systemd runs, else its pid file
        cloche_ok("host", "init")  # starts the daemon again; it reconciles at start
        deadline = time.monotonic() + 60
        while _consistent(user) != (["first"], ["first"]) and time.monotonic() < deadline:
            time.sleep(1)
        assert _consistent(user) == (["first"], ["first"])
        assert cloche_json("info", f"{user}/first")["state"] == "Running"
        repaired = [
            e for e in audit_events(f"{user}/victim") if e["action"] == "repaired environment"
        ]
        assert len(repaired) == 1
        # The id --no-wait printed still tells what became of the operation.
        shown = cloche_json("operation", operation)
        assert shown["status"] == "failed" and shown["target"] == f"{user}/victim"
        assert "daemon stopped during this operation" in shown["error"]["message"]
        followed = cloche("operation", operation, "--wait")
        assert followed.returncode != 0 and "run it again" in followed.stderr
        # The victim's name is free again.
        cloche_ok("create", f"{user}/victim")
    finally:
        remove_user(user)


def test_environments_survive_an_lxd_restart(owner: str) -> None:
    before = host_services.lxd_pid()
    host_services.stop_lxd()  # systemctl stop lxd.service where systemd runs, else SIGTERM
    cloche_ok("host", "init")
    assert host_services.lxd_pid() != before  # positive control: LXD really restarted
    assert cloche_json("info", f"{owner}/main")["state"] == "Running"
    assert exec_as_user(f"{owner}/main", "hostname") == "main"
    assert any(env["name"] == "main" for env in cloche_json("list", "--user", owner))


def test_every_action_is_audited_once_and_the_chain_detects_an_edit() -> None:
    user = make_user("--max-envs", "1")
    try:
        cloche_ok("create", f"{user}/box")
        assert cloche("create", f"{user}/box2").returncode == 5
        assert cloche("create", f"{user}/Bad").returncode == 2
        cloche_ok("stop", f"{user}/box")
        cloche_ok("start", f"{user}/box")
        cloche_ok("rm", f"{user}/box", "--yes")
    finally:
        cloche_ok("user", "rm", user, "--yes")
    # The daemon's own actors (scheduler, reconciler) act on their own time; this test counts
    # the events of the calls it made.
    actions = [
        (e["action"], e["target"], e["outcome"])
        for e in audit_events(user)
        if not str(e["actor"]).startswith("cloche-")
    ]
    assert actions == [
        ("added user", user, "succeeded"),
        ("created environment", f"{user}/box", "succeeded"),
        ("created environment", f"{user}/box2", "failed"),
        ("created environment", f"{user}/Bad", "failed"),
        ("stopped environment", f"{user}/box", "succeeded"),
        ("started environment", f"{user}/box", "succeeded"),
        ("removed environment", f"{user}/box", "succeeded"),
        ("removed user", user, "succeeded"),
    ]
    assert "intact" in cloche_ok("audit", "verify")

    original = AUDIT_LOG.read_bytes()
    lines = original.split(b"\n")
    number = next(i for i, line in enumerate(lines) if f'"target":"{user}/box"'.encode() in line)
    tampered = bytearray(lines[number])
    position = tampered.index(b'"actor":"') + len(b'"actor":"')
    tampered[position] = ord("X") if tampered[position] != ord("X") else ord("Y")
    lines[number] = bytes(tampered)
    try:
        AUDIT_LOG.write_bytes(b"\n".join(lines))
        result = cloche("audit", "verify")
        assert result.returncode == 1
        assert f"line {number + 1}" in result.stderr
    finally:
        current = AUDIT_LOG.read_bytes()
        # Keep anything the daemon appended meanwhile, after the original bytes.
        AUDIT_LOG.write_bytes(original + current[len(original) :])
    assert "intact" in cloche_ok("audit", "verify")
