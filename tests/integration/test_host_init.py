"""'cloche host init' against the real LXD: settings, idempotence, conflicts, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.model.config import ClocheConfig
from cloche.render.sysctl import MINIMUM_KERNEL_SETTINGS
from tests.conftest import unique_suffix
from tests.integration.cloche_cli import cloche
from tests.integration.conftest import lxc

HOST_CONFIG = Path("/etc/cloche/config.yaml")


def query(path: str) -> dict[str, object]:
    """GET an LXD API path through the real lxc client."""
    return dict(json.loads(lxc("query", path).stdout))


def lxd_configuration(config: ClocheConfig) -> list[dict[str, object]]:
    """What LXD holds for cloche's pool, bridge and profile (without usage counters)."""
    objects = [
        query(f"/1.0/storage-pools/{config.storage.pool}"),
        query(f"/1.0/networks/{config.network.bridge}"),
        query(f"/1.0/profiles/{config.profile.name}"),
    ]
    for item in objects:
        item.pop("used_by", None)
    return objects


def everything_in_lxd() -> str:
    """A fingerprint of all pools, networks and profiles, to prove nothing changed."""
    listings = [
        json.loads(lxc("query", path).stdout)
        for path in (
            "/1.0/storage-pools?recursion=1",
            "/1.0/networks?recursion=1",
            "/1.0/profiles?recursion=1",
        )
    ]
    for listing in listings:
        for item in listing:
            item.pop("used_by", None)  # usage, in no stable order; not configuration
    return json.dumps(listings, sort_keys=True)


@pytest.fixture(scope="module")
def host_config() -> ClocheConfig:
    """The host's config after an init (the suite runs on a host set up by quickstart)."""
    result = cloche("host", "init")
    assert result.returncode == 0, result.stderr
    from cloche.model.config import load_config_text

    return load_config_text(HOST_CONFIG.read_text())


def test_pool_bridge_and_profile_have_the_expected_settings(host_config: ClocheConfig) -> None:
    pool, network, profile = lxd_configuration(host_config)
    assert pool["driver"] == "btrfs"
    assert pool["config"]["size"] == host_config.storage.size  # type: ignore[index]
    assert network["type"] == "bridge"
    network_config = network["config"]
    assert network_config["ipv4.address"] == host_config.network.gateway_cidr  # type: ignore[index]
    assert network_config["ipv4.nat"] == "true"  # type: ignore[index]
    assert network_config["ipv6.address"] == "none"  # type: ignore[index]
    profile_config = profile["config"]
    assert profile_config["security.privileged"] == "false"  # type: ignore[index]
    assert profile_config["security.idmap.isolated"] == "true"  # type: ignore[index]
    assert profile_config["security.nesting"] == "false"  # type: ignore[index]
    assert profile_config["limits.processes"] == "512"  # type: ignore[index]
    devices = profile["devices"]
    assert devices["root"]["pool"] == host_config.storage.pool  # type: ignore[index]
    assert devices["eth0"]["network"] == host_config.network.bridge  # type: ignore[index]


def test_kernel_settings_are_applied_and_persisted(host_config: ClocheConfig) -> None:
    persisted = Path("/etc/sysctl.d/60-cloche.conf").read_text()
    for key, minimum in MINIMUM_KERNEL_SETTINGS.items():
        value = int(Path("/proc/sys", *key.split(".")).read_text().split()[0])
        assert value >= minimum, key
        assert f"{key} = " in persisted


def test_second_init_changes_nothing(host_config: ClocheConfig) -> None:
    before = lxd_configuration(host_config)
    config_before = HOST_CONFIG.read_bytes()
    result = cloche("host", "init")
    assert result.returncode == 0, result.stderr
    assert "nothing changed" in result.stdout
    assert lxd_configuration(host_config) == before
    assert HOST_CONFIG.read_bytes() == config_before


def test_status_reports_every_component(host_config: ClocheConfig) -> None:
    result = cloche("host", "status", "--json")
    components = {item["component"]: item for item in json.loads(result.stdout)}
    assert {"config", "packages", "kernel", "lxd", "pool", "bridge", "profile"} <= set(components)
    for name in ("packages", "kernel", "lxd", "pool", "bridge", "profile"):
        assert components[name]["ok"], components[name]


@pytest.fixture
def foreign_bridge() -> Iterator[str]:
    """A bridge made by hand (not by cloche) with its own subnet."""
    name = f"tb{unique_suffix()}"
    lxc(
        "network",
        "create",
        name,
        "ipv4.address=10.251.7.1/24",
        "ipv4.nat=false",
        "ipv6.address=none",
    )
    yield name
    lxc("network", "delete", name, check=False)


@pytest.fixture
def foreign_pool() -> Iterator[str]:
    """A dir pool made by hand."""
    name = f"tp{unique_suffix()}"
    lxc("storage", "create", name, "dir")
    yield name
    lxc("storage", "delete", name, check=False)


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_conflicting_bridge_is_reported_and_left_untouched(
    foreign_bridge: str, tmp_path: Path
) -> None:
    config = _config_file(
        tmp_path, f"network: {{bridge: {foreign_bridge}, subnet: 10.252.0.0/24}}\n"
    )
    before_lxd, before_file = everything_in_lxd(), config.read_text()
    result = cloche("host", "init", "--config", str(config))
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"network '{foreign_bridge}' that cloche did not create" in result.stderr
    assert "10.251.7.1/24" in result.stderr
    assert "untouched" in result.stderr
    assert everything_in_lxd() == before_lxd
    assert config.read_text() == before_file


def test_conflicting_pool_is_reported_and_left_untouched(foreign_pool: str, tmp_path: Path) -> None:
    config = _config_file(tmp_path, f"storage: {{pool: {foreign_pool}}}\n")
    before_lxd = everything_in_lxd()
    result = cloche("host", "init", "--config", str(config))
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"storage pool '{foreign_pool}'" in result.stderr
    assert "driver is 'dir'" in result.stderr
    assert everything_in_lxd() == before_lxd


@pytest.mark.parametrize(
    ("config_text", "arguments", "message"),
    [
        ("storage: {size: 20GiB}\ncolour: blue\n", [], "colour: unknown key"),
        ("", ["--subnet", "10.0.0.300/24"], "network.subnet: '10.0.0.300/24' is not an IPv4"),
        ("", ["--pool-size", "lots"], "storage.size: 'lots' is not a size"),
        ("", ["--storage-device", "/dev/cloche-missing-disk"], "does not exist"),
    ],
    ids=["unknown-key", "bad-subnet", "pool-size-lots", "missing-device"],
)
def test_bad_input_is_one_sentence_and_changes_nothing(
    tmp_path: Path, config_text: str, arguments: list[str], message: str
) -> None:
    config = _config_file(tmp_path, config_text)
    before_lxd, host_config_before = everything_in_lxd(), HOST_CONFIG.read_bytes()
    result = cloche("host", "init", "--config", str(config), *arguments)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert config.read_text() == config_text
    assert everything_in_lxd() == before_lxd
    assert HOST_CONFIG.read_bytes() == host_config_before
