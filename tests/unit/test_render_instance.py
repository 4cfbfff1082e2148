"""The LXD bodies of a tenant's project, profiles, template and environments (golden), their
typed inputs, and how LXD's refusals become cloche errors."""

from __future__ import annotations

import pytest

from cloche.model.errors import Conflict, HostFailure, Invalid, NotFound, QuotaExceeded
from cloche.model.instances import limits_patch
from cloche.model.limits import GIB, MIB, SECURITY_PROFILES, IdRange, Limits, ProjectQuotas
from cloche.render import instance as render
from cloche.runtime.lxd_errors import OperationFailed, translate
from tests.unit.golden import assert_golden_json

LIMITS = Limits(cpu=2, memory_bytes=2 * GIB, disk_bytes=10 * GIB, processes=512)
QUOTAS = ProjectQuotas(
    environments=5, cpu=8, memory_bytes=16 * GIB, disk_bytes=100 * GIB, processes=4096
)


def test_project_request_golden() -> None:
    assert_golden_json(
        "instance/project-requests.json",
        {
            "no-docker": render.project_request("alice", QUOTAS, "clochebr0"),
            "docker": render.project_request(
                "bob",
                ProjectQuotas(
                    environments=1,
                    cpu=2,
                    memory_bytes=1 * GIB,
                    disk_bytes=8 * GIB,
                    processes=600,
                    docker=True,
                ),
                "envs0",
            ),
        },
    )


def test_project_limits_are_the_quotas_plus_exactly_one_template() -> None:
    config = render.project_request("alice", QUOTAS, "clochebr0")["config"]
    template = render.TEMPLATE_LIMITS
    assert config["limits.containers"] == "6"
    assert config["limits.cpu"] == str(8 + template.cpu)
    assert config["limits.processes"] == str(4096 + template.processes)
    assert config["limits.memory"] == "16896MiB"
    assert config["limits.disk"] == "104GiB"


def test_docker_permission_opens_nesting_and_interception_only() -> None:
    closed = render.project_request("alice", QUOTAS, "br")["config"]
    opened = render.project_request(
        "alice", ProjectQuotas(5, 8, 16 * GIB, 100 * GIB, 4096, docker=True), "br"
    )["config"]
    changed = {key for key in closed if closed[key] != opened[key]}
    assert changed == {"restricted.containers.nesting", "restricted.containers.interception"}
    assert opened["restricted.containers.nesting"] == "allow"
    assert closed["restricted.containers.nesting"] == "block"


def test_security_profiles_golden() -> None:
    assert_golden_json(
        "instance/security-profiles.json",
        render.security_profile_requests(2_000_000, 65536, "cloche", "clochebr0", 512),
    )


def test_security_profiles_share_one_idmap_so_copies_never_remap() -> None:
    profiles = render.security_profile_requests(3_000_000, 131072, "p", "b", 1024)
    assert [profile["name"] for profile in profiles] == list(SECURITY_PROFILES)
    idmaps = {
        (p["config"]["security.idmap.base"], p["config"]["security.idmap.size"]) for p in profiles
    }
    assert idmaps == {("3000000", "131072")}
    by_name = {profile["name"]: profile["config"] for profile in profiles}
    assert by_name["docker"]["security.nesting"] == "true"
    assert by_name["strict"]["security.nesting"] == "false"
    assert by_name["standard"]["security.nesting"] == "false"
    assert by_name["strict"]["limits.processes"] == "256"
    assert by_name["strict"]["linux.sysctl.user.max_user_namespaces"] == "0"


def test_no_docker_profile_without_the_docker_permission() -> None:
    profiles = render.security_profile_requests(2_000_000, 65536, "p", "b", docker=False)
    assert [profile["name"] for profile in profiles] == ["standard", "strict"]


def test_instance_request_golden() -> None:
    assert_golden_json(
        "instance/instance-requests.json",
        {
            "copy": render.instance_request(
                "web",
                profile="docker",
                limits=LIMITS,
                user="alice",
                pool="cloche",
                source_instance="tmpl-cloche-bookworm",
            ),
            "image": render.instance_request(
                "db-1",
                profile="strict",
                limits=Limits(1, 512 * MIB, 4 * GIB, 128),
                user="alice",
                pool="cloche",
                image_alias="cloche/bookworm",
            ),
            "template": render.template_request("cloche/bookworm", "alice", "cloche"),
        },
    )


def test_instance_request_needs_exactly_one_source() -> None:
    common = {"profile": "standard", "limits": LIMITS, "user": "alice", "pool": "p"}
    with pytest.raises(Invalid, match="exactly one source"):
        render.instance_request("web", **common)  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="exactly one source"):
        render.instance_request(
            "web",
            image_alias="a",
            source_instance="b",
            **common,  # type: ignore[arg-type]
        )


def test_instance_request_refuses_an_unknown_profile() -> None:
    with pytest.raises(Invalid, match="Security profile 'privileged' does not exist"):
        render.instance_request(
            "web", profile="privileged", limits=LIMITS, user="a", pool="p", image_alias="x"
        )


@pytest.mark.parametrize("name", ["web", "a", "db-1", "x" * 40, "a1b2"])
def test_good_environment_names(name: str) -> None:
    assert render.check_environment_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "1web", "-web", "web-", "Web", "we_b", "x" * 41, "tmpl-x", "a.b"]
)
def test_bad_environment_names(name: str) -> None:
    # The same rule as everywhere (model/names.py): rendering never sees another one.
    with pytest.raises(Invalid, match=r"is not valid|reserved for cloche"):
        render.check_environment_name(name)


@pytest.mark.parametrize("user", ["", "Alice", "9lives", "a_b", "x" * 33, "bob-"])
def test_bad_user_names(user: str) -> None:
    with pytest.raises(Invalid, match="User name"):
        render.project_name(user)


def test_project_and_template_names() -> None:
    assert render.project_name("alice") == "cloche-alice"
    assert render.user_of_project("cloche-alice") == "alice"
    assert render.user_of_project("default") is None
    assert render.template_name("cloche/bookworm") == "tmpl-cloche-bookworm"
    assert len(render.template_name("x/" * 80)) <= 63
    with pytest.raises(Invalid, match="no letters or digits"):
        render.template_name("//")


def test_limits_are_checked() -> None:
    with pytest.raises(Invalid, match="CPU limit is 0; it must be at least 1"):
        Limits(0, GIB, 10 * GIB, 100)
    with pytest.raises(Invalid, match=r"memory limit .* at least 64MiB"):
        Limits(1, MIB, 10 * GIB, 100)
    with pytest.raises(Invalid, match="process limit is 8"):
        Limits(1, GIB, 10 * GIB, 8)
    with pytest.raises(Invalid, match="whole number"):
        Limits(1, GIB, 10 * GIB, True)
    assert LIMITS.describe() == "2 CPU, 2GiB memory, 10GiB disk, 512 processes"


def test_quotas_and_id_ranges_are_checked() -> None:
    with pytest.raises(Invalid, match="environment quota is -1"):
        ProjectQuotas(-1, 1, GIB, GIB, 100)
    with pytest.raises(Invalid, match="uid range size is 1000; it must be at least 65536"):
        IdRange(1_000_000, 1000)
    first, second = IdRange(1_000_000), IdRange(1_065_536)
    assert not first.overlaps(second)
    assert first.overlaps(IdRange(1_065_535))


def test_runtime_resize_writes_the_keys_render_writes() -> None:
    root = {"type": "disk", "path": "/", "pool": "cloche", "size": "1GiB"}
    patch = limits_patch(LIMITS, root)
    request = render.instance_request(
        "web", profile="standard", limits=LIMITS, user="alice", pool="cloche", image_alias="i"
    )
    assert patch["config"].items() <= request["config"].items()
    assert patch["devices"]["root"] == request["devices"]["root"]


# The exact texts LXD 5.0.2 answered when measured (see the runtime's integration tests).
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "Failed checking if instance creation allowed: Reached maximum number of instances "
            'in project "cloche-a"',
            QuotaExceeded,
        ),
        (
            'Failed checking if instance creation allowed: Reached maximum aggregate value "8" for '
            '"limits.cpu" in project "t"',
            QuotaExceeded,
        ),
        (
            'Failed creating instance record: Add instance info to the database: This "instances" '
            "entry already exists",
            Conflict,
        ),
        ("Instance not found", NotFound),
        ("Only empty projects can be removed", Conflict),
        ("Profile is currently in use", Conflict),
        ("Instance is not running", Conflict),
        ('"limits.cpu" is too low: current total is "6"', Conflict),
        (
            'Can\'t change "limits.containers" in project "t": "limits.containers" is too low: '
            'there currently are 5 instances of type container in project "t"',
            Conflict,
        ),
        (
            'Conflict detected when changing "restricted.containers.nesting" in project "t": '
            'Invalid value "true" for config "security.nesting" on container "e" of project '
            '"t": Container nesting is forbidden',
            Conflict,
        ),
        (
            'Failed shutting down instance, status is "Running": shutting down the container '
            "failed",
            HostFailure,
        ),
    ],
)
def test_lxd_refusals_become_cloche_errors(text: str, kind: type[Exception]) -> None:
    error = translate(OperationFailed(text), "create 'web'", "cloche-a")
    assert type(error) is kind
    message = str(error)
    assert message.count(". ") == 0 or kind is HostFailure
    assert message.endswith(".")
    assert "cloche-a" in message
