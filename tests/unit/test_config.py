"""The config schema: defaults, valid input, and each invalid case with its message."""

from __future__ import annotations

import pytest

from cloche.model.config import ClocheConfig, load_config_text, with_overrides
from cloche.model.errors import Invalid
from cloche.model.units import MAXIMUM_SIZE_BYTES, format_size, parse_size
from cloche.render.config import render_config_yaml


def test_defaults_are_a_loop_btrfs_pool_and_a_private_bridge() -> None:
    config = load_config_text("")
    assert config.storage.source == "loop"
    assert config.storage.driver == "btrfs"
    assert config.storage.size == "20GiB"
    assert config.network.subnet == "10.120.0.0/16"
    assert config.network.gateway_cidr == "10.120.0.1/16"
    assert config.network.ipv6 is False
    assert config.profile.processes == 512


def test_valid_file_is_read() -> None:
    config = load_config_text(
        "storage: {pool: fast, size: 64GiB}\n"
        "network: {bridge: br-envs, subnet: 172.20.0.0/20}\n"
        "image: {packages: [git, build-essential]}\n"
    )
    assert config.storage.pool == "fast"
    assert config.storage.size == "64GiB"
    assert config.network.gateway_cidr == "172.20.0.1/20"
    assert config.image.packages == ["git", "build-essential"]


def test_sizes_are_normalised() -> None:
    assert load_config_text("storage: {size: 20480MiB}").storage.size == "20GiB"
    assert parse_size("1KB") == 1000
    assert format_size(parse_size("3GiB")) == "3GiB"
    assert format_size(1500) == "1500B"


@pytest.mark.parametrize(
    "text", ["100000000000000000000TiB", "1048577TiB", "9223372036854775808", "9" * 5000]
)
def test_sizes_beyond_what_lxd_and_sqlite_hold_are_refused(text: str) -> None:
    with pytest.raises(Invalid, match=r"larger than cloche can hold; give a size of at most"):
        parse_size(text)
    assert parse_size("1048576TiB") == MAXIMUM_SIZE_BYTES < 2**63


def test_device_source() -> None:
    config = load_config_text("storage: {source: device, device: /dev/vdb}")
    assert config.storage.device == "/dev/vdb"


def test_rendered_file_reads_back_identically() -> None:
    config = load_config_text("storage: {size: 30GiB}\nnetwork: {subnet: 10.44.0.0/16}")
    assert load_config_text(render_config_yaml(config)) == config


def test_overrides_are_validated() -> None:
    config = with_overrides(ClocheConfig(), {"storage.size": "40GiB"})
    assert config.storage.size == "40GiB"
    with pytest.raises(Invalid, match=r"storage\.size: 'lots' is not a size"):
        with_overrides(ClocheConfig(), {"storage.size": "lots"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: blue", r"colour: unknown key"),
        ("storage: {sise: 20GiB}", r"storage\.sise: unknown key"),
        ("storage: {size: lots}", r"storage\.size: 'lots' is not a size; write a whole number"),
        ("storage: {size: 1GiB}", r"storage: size 1GiB is too small; a pool needs at least 2GiB"),
        ("storage: {driver: ext4}", r"storage\.driver: 'ext4' is not allowed"),
        ("storage: {source: device}", r"storage: source 'device' needs 'device'"),
        ("storage: {source: device, device: sdb}", r"must be a path under /dev/"),
        ("storage: {device: /dev/sdb}", r"'device' is only used with source 'device'"),
        ("storage: {pool: Big_Pool}", r"storage\.pool: .*lowercase letter"),
        ("network: {subnet: 10.0.0.300/24}", r"network\.subnet: '10\.0\.0\.300/24' is not an IPv4"),
        ("network: {subnet: 10.0.0.1/24}", r"network\.subnet: .*has host bits set"),
        ("network: {subnet: 8.8.8.0/24}", r"network\.subnet: 8\.8\.8\.0/24 is not a private range"),
        ("network: {subnet: 10.1.0.0/28}", r"network\.subnet: /28 is outside /8 to /24"),
        ("network: {bridge: averyveryverylongbridge}", r"network\.bridge: must be 1 to 15"),
        ("profile: {processes: 5}", r"profile\.processes: Input should be greater than or equal"),
        ("image: {packages: ['rm -rf']}", r"image\.packages\.0: 'rm -rf' is not a Debian package"),
        ("image: {mirror: 'ftp://x'}", r"image\.mirror: String should match pattern"),
        ("version: 2", r"version: 2 is not allowed"),
        ("[1, 2]", r"the file must hold a mapping of keys, not list"),
        ("storage: [", r"not valid YAML at line 1"),
    ],
)
def test_invalid_config_names_the_path_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        load_config_text(text, source="config.yaml")
    sentence = str(caught.value)
    assert sentence.startswith("config.yaml: ")
    assert sentence.endswith(".") and not sentence.endswith("..")
    assert "\n" not in sentence


def test_several_problems_are_counted() -> None:
    with pytest.raises(Invalid, match=r"and 1 more problem"):
        load_config_text("storage: {size: lots}\nnetwork: {subnet: nope}")
