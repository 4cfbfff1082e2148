"""The LXD runtime against the real LXD: a tenant's project, profiles, template and environments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cloche.model.errors import Conflict, HostFailure, QuotaExceeded
from cloche.model.instances import BootFailure, InstanceInfo, TemplateReport
from cloche.model.limits import GIB, MIB, IdRange, Limits, ProjectQuotas
from cloche.render import instance as render
from cloche.runtime.instances import LxdInstances
from cloche.runtime.lxd import Lxd
from cloche.runtime.projects import LxdProjects
from tests.conftest import unique_suffix
from tests.integration.conftest import lxc

SOCKET = "/var/lib/lxd/unix.socket"
IMAGE = "cloche/bookworm"
POOL = "cloche"
QUOTAS = ProjectQuotas(
    environments=4, cpu=6, memory_bytes=4 * GIB, disk_bytes=40 * GIB, processes=3000, docker=True
)
SMALL = Limits(cpu=1, memory_bytes=512 * MIB, disk_bytes=4 * GIB, processes=200)
LXCFS = os.path.exists("/var/lib/lxcfs/proc/meminfo")


@dataclass
class Tenant:
    """The module's user: project, id range, runtimes and the template's report."""

    user: str
    project: str
    bridge: str
    subnet_prefix: str
    ids: IdRange
    projects: LxdProjects
    instances: LxdInstances
    template: TemplateReport

    def create_env(self, name: str, profile: str = "standard", limits: Limits = SMALL) -> str:
        """Copy the template into a new (stopped) environment; return its name."""
        request = render.instance_request(
            name,
            profile=profile,
            limits=limits,
            user=self.user,
            pool=POOL,
            source_instance=self.template.name,
        )
        self.instances.create_from_template(request)
        return name

    def boot_env(self, name: str, profile: str = "standard", limits: Limits = SMALL) -> str:
        """Create, start and wait until systemd is up."""
        self.create_env(name, profile, limits)
        self.instances.start(name)
        report = self.instances.wait_until_booted(name, timeout=120)
        assert report.state == "running", report
        return name

    def sh(self, name: str, script: str) -> str:
        """Run a shell script inside; return stdout, failing on a non-zero exit."""
        result = self.instances.exec(name, ["sh", "-c", script], timeout=60)
        assert result.exit_code == 0, (script, result)
        return result.text.strip()


def _eventually(read: Callable[[], str], expected: str, seconds: float = 15) -> None:
    """Poll read() until it returns expected (LXD applies CPU pinning in the background)."""
    deadline = time.monotonic() + seconds
    seen = read()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = read()
    assert seen == expected


def _remove_project(project: str) -> None:
    """Delete everything this module made, with the plain lxc client (works even if ours broke)."""
    # Other suites restart LXD; wait for it rather than leave the project behind.
    subprocess.run(["lxd", "waitready", "--timeout=60"], check=False, capture_output=True)
    listed = lxc("list", "--project", project, "--format", "json", check=False)
    if listed.returncode == 0:
        for instance in json.loads(listed.stdout or "[]"):
            lxc("delete", instance["name"], "--project", project, "--force", check=False)
    profiles = lxc("profile", "list", "--project", project, "--format", "json", check=False)
    if profiles.returncode == 0:
        for profile in json.loads(profiles.stdout or "[]"):
            if profile["name"] != "default":
                lxc("profile", "delete", profile["name"], "--project", project, check=False)
    lxc("project", "delete", project, check=False)


def _free_subnet_prefix() -> str:
    """A 10.251.X. prefix no route of this machine uses yet."""
    routes = subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, check=True
    ).stdout
    for third in random.sample(range(1, 255), 254):
        prefix = f"10.251.{third}."
        if prefix not in routes:
            return prefix
    raise AssertionError("no free 10.251.X.0/24 subnet on this machine")


@pytest.fixture(scope="module")
def bridge() -> Iterator[tuple[str, str]]:
    """The module's own bridge (name, subnet prefix), with dns.mode=none.

    On a bridge with LXD's default dns.mode=managed, an instance cannot start while an instance
    of the same name exists in any other project on that bridge ("Instance DNS name ... already
    used on network"), so tenants' templates and same-named environments would collide.
    """
    name, prefix = f"t-rt-{unique_suffix()}", _free_subnet_prefix()
    lxc(
        "network", "create", name, f"ipv4.address={prefix}1/24", "ipv4.nat=true",
        "ipv6.address=none", "dns.mode=none",
    )  # fmt: skip
    try:
        yield name, prefix
    finally:
        subprocess.run(["lxd", "waitready", "--timeout=60"], check=False, capture_output=True)
        lxc("network", "delete", name, check=False)


@pytest.fixture(scope="module")
def tenant(bridge: tuple[str, str]) -> Iterator[Tenant]:
    """One user project with its profiles and template for the whole module."""
    if lxc("image", "info", IMAGE, check=False).returncode != 0:
        pytest.skip(f"the base image {IMAGE} is not built yet (run 'cloche image build')")
    bridge_name, prefix = bridge
    user = f"t-rt-{unique_suffix()}"
    project = render.project_name(user)
    # High in root's subordinate range, away from the ranges LXD hands out from its bottom.
    ids = IdRange(base=8_000_000 + random.randrange(30) * 65536)
    projects = LxdProjects(Lxd(SOCKET))
    try:
        request = render.project_request(user, QUOTAS, bridge_name)
        assert projects.ensure_project(request) == "created"
        profiles = render.security_profile_requests(ids.base, ids.size, POOL, bridge_name, 512)
        assert set(projects.ensure_profiles(project, profiles).values()) == {"created"}
        instances = LxdInstances.for_project(SOCKET, project)
        template = instances.ensure_template(render.template_request(IMAGE, user, POOL))
        print(f"\ntemplate {template}")
        yield Tenant(user, project, bridge_name, prefix, ids, projects, instances, template)
    finally:
        _remove_project(project)


@pytest.fixture(scope="module")
def standard_env(tenant: Tenant) -> str:
    """A booted environment with the standard profile and SMALL limits."""
    started = time.monotonic()
    name = tenant.create_env("t-rt-std")
    copied = time.monotonic()
    tenant.instances.start(name)
    report = tenant.instances.wait_until_booted(name)
    print(
        f"\ncopy {copied - started:.2f} s, start+boot {time.monotonic() - copied:.2f} s "
        f"(boot {report.seconds:.2f} s, {report.state})"
    )
    return name


@pytest.fixture(scope="module")
def docker_env(tenant: Tenant) -> str:
    """A booted environment with the docker profile."""
    return tenant.boot_env("t-rt-docker", "docker")


@pytest.fixture(scope="module")
def strict_env(tenant: Tenant) -> str:
    """A booted environment with the strict profile."""
    return tenant.boot_env("t-rt-strict", "strict")


def test_project_and_profiles_converge(tenant: Tenant) -> None:
    request = render.project_request(tenant.user, QUOTAS, tenant.bridge)
    assert tenant.projects.ensure_project(request) == "kept"
    profiles = render.security_profile_requests(
        tenant.ids.base, tenant.ids.size, POOL, tenant.bridge
    )
    assert set(tenant.projects.ensure_profiles(tenant.project, profiles).values()) == {"kept"}
    bigger = ProjectQuotas(**{**QUOTAS.__dict__, "processes": QUOTAS.processes + 1})
    try:
        assert tenant.projects.ensure_project(
            render.project_request(tenant.user, bigger, tenant.bridge)
        )
        observed = tenant.projects.get_project(tenant.project)
        assert observed is not None
        assert observed.config["limits.processes"] == str(
            bigger.processes + render.TEMPLATE_LIMITS.processes
        )
    finally:
        assert tenant.projects.ensure_project(request) == "updated"
    usage = tenant.projects.project_usage(tenant.project)
    assert usage["containers"].limit == QUOTAS.environments + 1
    assert usage["containers"].usage >= 1
    assert usage["cpu"].limit == QUOTAS.cpu + render.TEMPLATE_LIMITS.cpu


def test_template_is_shifted_once_and_kept(tenant: Tenant) -> None:
    template = tenant.instances.get(tenant.template.name)
    assert template.status == "Stopped"
    assert template.role == "template"
    assert template.config["boot.autostart"] == "false"
    shifted = json.loads(template.config["volatile.last_state.idmap"])
    assert {entry["Hostid"] for entry in shifted} == {tenant.ids.base}
    again = tenant.instances.ensure_template(render.template_request(IMAGE, tenant.user, POOL))
    assert again.action == "kept"


def test_copy_keeps_the_template_idmap_and_boots_with_its_limits(
    tenant: Tenant, standard_env: str
) -> None:
    name = standard_env
    template = tenant.instances.get(tenant.template.name)
    env = tenant.instances.get(name)
    # Same map on disk as the template: LXD had nothing to remap at the first start.
    assert env.config["volatile.last_state.idmap"] == template.config["volatile.last_state.idmap"]
    assert env.config["volatile.idmap.current"] == template.config["volatile.last_state.idmap"]
    # On disk (btrfs keeps every subvolume reachable): both are owned by the user's range.
    for instance in (tenant.template.name, name):
        rootfs = f"/var/lib/lxd/storage-pools/{POOL}/containers/{tenant.project}_{instance}/rootfs"
        assert os.stat(f"{rootfs}/etc/passwd").st_uid == tenant.ids.base
    assert env.owner == tenant.user and env.role == "environment"
    assert env.profiles == ("standard",)
    uid_map = tenant.sh(name, "cat /proc/self/uid_map").split()
    assert uid_map == ["0", str(tenant.ids.base), str(tenant.ids.size)]
    assert tenant.sh(name, "hostname") == name
    assert tenant.sh(name, "nproc") == str(SMALL.cpu)
    pids_max = tenant.sh(
        name, "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
    )
    assert pids_max == str(SMALL.processes)
    if LXCFS:
        mem_kib = int(tenant.sh(name, "awk '/^MemTotal/ {print $2}' /proc/meminfo"))
        assert mem_kib * 1024 == SMALL.memory_bytes
    state = tenant.instances.state(name)
    assert state.status == "Running"
    assert len(state.addresses) == 1 and state.addresses[0].startswith(tenant.subnet_prefix)
    assert state.memory_bytes > 0 and state.processes > 0
    assert "[  OK  ]" in tenant.instances.console_log(name)


def test_exec_passes_stdin_stdout_stderr_exit_code_and_user(
    tenant: Tenant, standard_env: str
) -> None:
    payload = bytes(range(256)) * 100
    result = tenant.instances.exec(
        standard_env, ["sh", "-c", "cat; echo oops >&2; exit 7"], stdin=payload
    )
    assert (result.exit_code, result.stdout, result.stderr) == (7, payload, b"oops\n")
    as_user = tenant.instances.exec(
        standard_env, ["sh", "-c", "id -u; id -g; pwd"], user=1000, group=1000, cwd="/tmp"
    )
    assert as_user.text.split() == ["1000", "1000", "/tmp"]
    with pytest.raises(HostFailure, match="did not finish within 1 s"):
        tenant.instances.exec(standard_env, ["sleep", "30"], timeout=1)
    missing = tenant.instances.exec(standard_env, ["no-such-command"])
    assert (missing.exit_code, missing.stderr) == (127, b"no-such-command: command not found\n")
    recorded = tenant.instances.exec(standard_env, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (recorded.exit_code, recorded.stdout, recorded.stderr) == (3, b"out\n", b"err\n")


def test_files_push_and_pull(tenant: Tenant, standard_env: str) -> None:
    data = b"hello\x00world\n"
    tenant.instances.push_file(standard_env, "/tmp/t-rt-file", data, mode=0o600, uid=1000, gid=1000)
    assert tenant.instances.pull_file(standard_env, "/tmp/t-rt-file") == data
    assert tenant.sh(standard_env, "stat -c '%a %u %g' /tmp/t-rt-file") == "600 1000 1000"


def test_resize_is_live(tenant: Tenant, standard_env: str) -> None:
    bigger = Limits(cpu=2, memory_bytes=768 * MIB, disk_bytes=5 * GIB, processes=300)
    try:
        info = tenant.instances.set_limits(standard_env, bigger)
        assert info.devices["root"]["size"] == "5GiB"
        assert tenant.instances.status(standard_env) == "Running"
        _eventually(lambda: tenant.sh(standard_env, "nproc"), "2")
        pids = tenant.sh(
            standard_env,
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        )
        assert pids == "300"
        if LXCFS:
            mem_kib = int(tenant.sh(standard_env, "awk '/^MemTotal/ {print $2}' /proc/meminfo"))
            assert mem_kib * 1024 == bigger.memory_bytes
    finally:
        tenant.instances.set_limits(standard_env, SMALL)
    _eventually(lambda: tenant.sh(standard_env, "nproc"), "1")


_OVERLAY = (
    "d=$(mktemp -d) && mkdir $d/l $d/u $d/w $d/m && echo hi > $d/l/f && "
    'unshare -rm sh -c "mount -t overlay overlay -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w '
    '$d/m && cat $d/m/f"'
)


def test_docker_profile_allows_user_namespaces_and_overlay(tenant: Tenant, docker_env: str) -> None:
    assert tenant.instances.exec(docker_env, ["unshare", "-r", "true"]).exit_code == 0
    assert tenant.sh(docker_env, _OVERLAY) == "hi"
    # Nesting: a fresh proc inside a nested user and pid namespace (what runc does).
    proc = tenant.instances.exec(docker_env, ["unshare", "-rmpf", "--mount-proc", "true"])
    assert proc.exit_code == 0, proc


def test_strict_profile_refuses_user_namespaces_and_overlay(
    tenant: Tenant, strict_env: str
) -> None:
    refused = tenant.instances.exec(strict_env, ["unshare", "-r", "true"])
    assert refused.exit_code != 0
    assert b"No space left on device" in refused.stderr  # user.max_user_namespaces=0
    assert tenant.instances.exec(strict_env, ["sh", "-c", _OVERLAY]).exit_code != 0
    assert tenant.sh(strict_env, "test -e /dev/lxd || echo no-devlxd") == "no-devlxd"
    assert tenant.sh(strict_env, "cat /sys/fs/cgroup/pids/pids.max") == str(SMALL.processes)


def test_standard_profile_has_no_nesting(tenant: Tenant, standard_env: str) -> None:
    proc = tenant.instances.exec(standard_env, ["unshare", "-rmpf", "--mount-proc", "true"])
    assert proc.exit_code != 0


def test_stop_of_a_hung_container_falls_back_to_force(tenant: Tenant) -> None:
    name = tenant.boot_env("t-rt-hang")
    try:
        tenant.instances.restart(name, timeout=20)
        assert tenant.instances.wait_until_booted(name).state == "running"
        init_pid = tenant.instances.state(name).pid
        # A stopped init never answers the shutdown request, like a container stuck in boot.
        os.kill(init_pid, signal.SIGSTOP)
        started = time.monotonic()
        assert tenant.instances.stop(name, timeout=2) == "forced"
        assert time.monotonic() - started < 30
        assert tenant.instances.status(name) == "Stopped"
        assert tenant.instances.stop(name) == "already stopped"
    finally:
        assert tenant.instances.delete(name)
    assert tenant.instances.find(name) is None
    assert not tenant.instances.delete(name)


def test_an_instance_that_stops_while_booting_is_a_failure(tenant: Tenant) -> None:
    name = tenant.create_env("t-rt-dies")
    try:
        # An init that exits at once: LXD's start succeeds, the instance is Stopped right after.
        lxc(
            "config",
            "set",
            name,
            "raw.lxc",
            "lxc.init.cmd = /bin/false",
            "--project",
            tenant.project,
        )
        tenant.instances.start(name)
        with pytest.raises(BootFailure, match="stopped while booting") as failure:
            tenant.instances.wait_until_booted(name, timeout=60)
        assert failure.value.console_tail
    finally:
        tenant.instances.delete(name)


def test_quota_refusals_are_quota_exceeded(tenant: Tenant, standard_env: str) -> None:
    too_big = Limits(
        cpu=QUOTAS.cpu + 1, memory_bytes=SMALL.memory_bytes, disk_bytes=4 * GIB, processes=100
    )
    with pytest.raises(QuotaExceeded, match=r"Reached maximum aggregate value .*limits\.cpu"):
        tenant.create_env("t-rt-toobig", limits=too_big)
    with pytest.raises(QuotaExceeded, match=r"limits\.cpu"):
        tenant.instances.set_limits(standard_env, too_big)
    usage = tenant.projects.project_usage(tenant.project)["containers"]
    assert usage.available is not None
    fillers = [f"t-rt-fill{index}" for index in range(usage.available)]
    tiny = Limits(cpu=1, memory_bytes=64 * MIB, disk_bytes=1 * GIB, processes=32)
    try:
        for filler in fillers:
            tenant.create_env(filler, limits=tiny)
        with pytest.raises(QuotaExceeded, match="Reached maximum number of instances"):
            tenant.create_env("t-rt-onetoomany", limits=tiny)
    finally:
        for filler in fillers:
            tenant.instances.delete(filler)


def test_names_are_conflicts_and_projects_with_environments_stay(
    tenant: Tenant, standard_env: str
) -> None:
    with pytest.raises(Conflict, match="already exists"):
        tenant.create_env(standard_env)
    with pytest.raises(Conflict, match="still holds"):
        tenant.projects.delete_project(tenant.project)


def test_second_tenant_gets_its_own_range_and_is_deleted_whole(tenant: Tenant) -> None:
    user = f"t-rt-{unique_suffix()}"
    project = render.project_name(user)
    ids = IdRange(tenant.ids.base + tenant.ids.size)
    quotas = ProjectQuotas(
        environments=1, cpu=1, memory_bytes=GIB, disk_bytes=8 * GIB, processes=300
    )
    try:
        tenant.projects.ensure_project(render.project_request(user, quotas, tenant.bridge))
        tenant.projects.ensure_profiles(
            project,
            render.security_profile_requests(ids.base, ids.size, POOL, tenant.bridge, docker=False),
        )
        assert tenant.projects.list_profiles(project) == ["default", "standard", "strict"]
        # The same template name as the first tenant's, on the same bridge (dns.mode=none).
        instances = LxdInstances.for_project(SOCKET, project)
        report = instances.ensure_template(render.template_request(IMAGE, user, POOL))
        assert report.name == tenant.template.name
        shifted = json.loads(instances.get(report.name).config["volatile.last_state.idmap"])
        assert {entry["Hostid"] for entry in shifted} == {ids.base}
        tenant.projects.delete_project(project)
        assert tenant.projects.get_project(project) is None
    finally:
        _remove_project(project)


def test_list_shows_the_project_instances(tenant: Tenant, standard_env: str) -> None:
    listed: list[InstanceInfo] = tenant.instances.list()
    names = [info.name for info in listed]
    assert tenant.template.name in names and standard_env in names
    assert all("?" not in name for name in names)
