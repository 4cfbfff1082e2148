"""The LXD requests cloche renders (golden) and the convergence plan it decides."""

from __future__ import annotations

import dataclasses

import pytest

from cloche.model.config import ClocheConfig, load_config_text
from cloche.model.errors import Conflict, NotFound
from cloche.model.host import LxdObject
from cloche.render.lxd import (
    network_request,
    plan_lxd,
    profile_request,
    storage_pool_request,
)
from cloche.render.sysctl import MINIMUM_KERNEL_SETTINGS, render_sysctl_conf, settings_to_raise
from tests.unit.golden import assert_golden, assert_golden_json

DEFAULT = ClocheConfig()


def test_default_requests_golden() -> None:
    assert_golden_json(
        "lxd/default-requests.json",
        {
            "storage_pool": storage_pool_request(DEFAULT.storage),
            "network": network_request(DEFAULT.network),
            "profile": profile_request(DEFAULT.profile, "cloche", "clochebr0"),
        },
    )


def test_device_and_ipv6_requests_golden() -> None:
    config = load_config_text(
        "storage: {pool: disk, source: device, device: /dev/vdb}\n"
        "network: {bridge: envs0, subnet: 172.30.0.0/20, ipv6: true}\n"
        "profile: {name: hardened, processes: 1024}\n"
    )
    assert_golden_json(
        "lxd/device-ipv6-requests.json",
        {
            "storage_pool": storage_pool_request(config.storage),
            "network": network_request(config.network),
            "profile": profile_request(config.profile, "disk", "envs0"),
        },
    )


def _as_observed(request: dict[str, object], **changes: object) -> LxdObject:
    observed = LxdObject(
        name=str(request.get("name", "")),
        description=str(request.get("description", "")),
        config=dict(request.get("config", {})),  # type: ignore[call-overload]
        driver=str(request.get("driver", "")),
        kind=str(request.get("type", "")),
        devices=request.get("devices") or {},  # type: ignore[arg-type]
    )
    return dataclasses.replace(observed, **changes)  # type: ignore[arg-type]


def _converged(config: ClocheConfig) -> tuple[LxdObject, LxdObject, LxdObject]:
    pool = storage_pool_request(config.storage)
    pool["config"] = {**pool["config"], "source": "/var/lib/lxd/disks/cloche.img"}
    return (
        _as_observed(pool),
        _as_observed(network_request(config.network)),
        _as_observed(profile_request(config.profile, "cloche", "clochebr0")),
    )


def test_empty_lxd_creates_everything() -> None:
    steps = plan_lxd(DEFAULT, None, None, None)
    assert [(step.kind, step.action) for step in steps] == [
        ("storage pool", "create"),
        ("network", "create"),
        ("profile", "create"),
    ]


def test_converged_lxd_keeps_everything() -> None:
    steps = plan_lxd(DEFAULT, *_converged(DEFAULT))
    assert {step.action for step in steps} == {"keep"}


def test_foreign_bridge_with_other_subnet_is_a_conflict_and_named() -> None:
    pool, network, profile = _converged(DEFAULT)
    foreign = dataclasses.replace(
        network, description="", config={**network.config, "ipv4.address": "10.9.0.1/24"}
    )
    with pytest.raises(Conflict, match=r"network 'clochebr0' that cloche did not create.*10\.9"):
        plan_lxd(DEFAULT, pool, foreign, profile)


def test_foreign_bridge_with_same_settings_is_used_untouched() -> None:
    pool, network, profile = _converged(DEFAULT)
    adopted = dataclasses.replace(network, description="made by hand")
    steps = plan_lxd(DEFAULT, pool, adopted, profile)
    assert steps[1].action == "keep"


def test_own_bridge_with_other_subnet_is_updated() -> None:
    pool, network, profile = _converged(DEFAULT)
    stale = dataclasses.replace(network, config={**network.config, "ipv4.address": "10.9.0.1/24"})
    assert plan_lxd(DEFAULT, pool, stale, profile)[1].action == "update"


def test_pool_with_other_driver_is_a_conflict() -> None:
    pool, network, profile = _converged(DEFAULT)
    with pytest.raises(Conflict, match=r"storage pool 'cloche'.*driver is 'dir'.*untouched"):
        plan_lxd(DEFAULT, dataclasses.replace(pool, driver="dir"), network, profile)


def test_pool_with_other_size_is_a_conflict() -> None:
    pool, network, profile = _converged(DEFAULT)
    smaller = dataclasses.replace(pool, config={"size": "5GiB"})
    with pytest.raises(Conflict, match=r"size is '5GiB' \(cloche wants '20GiB'\)"):
        plan_lxd(DEFAULT, smaller, network, profile)


def test_existing_pool_must_exist() -> None:
    config = load_config_text("storage: {pool: mine, source: existing}")
    with pytest.raises(NotFound, match="no storage pool 'mine'"):
        plan_lxd(config, None, None, None)
    pool = _as_observed({"driver": "zfs", "config": {"source": "tank"}})
    assert plan_lxd(config, pool, None, None)[0].action == "keep"


def test_drifted_own_profile_is_updated_foreign_one_refused() -> None:
    pool, network, profile = _converged(DEFAULT)
    drifted = dataclasses.replace(profile, config={"security.privileged": "true"})
    assert plan_lxd(DEFAULT, pool, network, drifted)[2].action == "update"
    foreign = dataclasses.replace(drifted, description="someone else's")
    with pytest.raises(Conflict, match="profile 'cloche' with other settings"):
        plan_lxd(DEFAULT, pool, network, foreign)


def test_kernel_settings_are_only_raised() -> None:
    current: dict[str, int | None] = {key: 1 for key in MINIMUM_KERNEL_SETTINGS}
    current["vm.max_map_count"] = 10_000_000
    raised = settings_to_raise(current)
    assert "vm.max_map_count" not in raised
    assert raised["fs.inotify.max_user_instances"] == 1048576
    assert settings_to_raise(dict.fromkeys(MINIMUM_KERNEL_SETTINGS, 10**9)) == {}
    assert_golden("sysctl/60-cloche.conf", render_sysctl_conf(current))
