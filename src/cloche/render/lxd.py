"""Pure: the LXD pool, bridge and profile cloche wants, and the plan that converges LXD to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cloche.model.config import ClocheConfig, NetworkConfig, ProfileConfig, StorageConfig
from cloche.model.errors import Conflict, NotFound
from cloche.model.host import LxdObject

MANAGED_MARK = "Managed by cloche"

Kind = Literal["storage pool", "network", "profile"]
Action = Literal["create", "update", "keep"]


@dataclass(frozen=True)
class Step:
    """One thing to do to LXD: create, update or keep an object with this request body."""

    kind: Kind
    name: str
    action: Action
    request: dict[str, Any]


def storage_pool_request(storage: StorageConfig) -> dict[str, Any]:
    """The POST /1.0/storage-pools body for a pool cloche creates."""
    config = {"size": storage.size} if storage.source == "loop" else {"source": storage.device}
    return {
        "name": storage.pool,
        "driver": storage.driver,
        "description": f"{MANAGED_MARK}: environments' storage",
        "config": config,
    }


def network_request(network: NetworkConfig) -> dict[str, Any]:
    """The POST /1.0/networks body for the private NAT bridge."""
    config = {
        "ipv4.address": network.gateway_cidr,
        "ipv4.nat": "true",
        "ipv6.address": "auto" if network.ipv6 else "none",
        # With instance DNS names on, LXD 5.0.2 refuses to start an instance whose name is used
        # by any other instance on the bridge, in any project: two users could not both have an
        # environment called 'web'. DHCP and DNS forwarding still work.
        "dns.mode": "none",
    }
    if network.ipv6:
        config["ipv6.nat"] = "true"
    return {
        "name": network.bridge,
        "type": "bridge",
        "description": f"{MANAGED_MARK}: private bridge of environments",
        "config": config,
    }


def profile_request(profile: ProfileConfig, pool_name: str, bridge_name: str) -> dict[str, Any]:
    """The hardened base profile: unprivileged, own uid range, process limit, no nesting."""
    return {
        "name": profile.name,
        "description": f"{MANAGED_MARK}: hardened base profile of environments",
        "config": {
            "security.privileged": "false",
            "security.idmap.isolated": "true",
            "security.nesting": "false",
            "security.syscalls.intercept.mknod": "false",
            "limits.processes": str(profile.processes),
            "boot.autostart": "true",
        },
        "devices": {
            "root": {"type": "disk", "path": "/", "pool": pool_name},
            "eth0": {"type": "nic", "network": bridge_name, "name": "eth0"},
        },
    }


def _mismatches(wanted: dict[str, Any], actual: dict[str, str]) -> list[str]:
    return [
        f"{key} is {actual.get(key, 'unset')!r} (cloche wants {value!r})"
        for key, value in sorted(wanted.items())
        if actual.get(key) != value
    ]


def _pool_mismatches(request: dict[str, Any], observed: LxdObject) -> list[str]:
    problems = []
    if observed.driver != request["driver"]:
        problems.append(f"driver is {observed.driver!r} (cloche wants {request['driver']!r})")
    wanted = dict(request["config"])
    source = wanted.pop("source", None)
    if source is not None and source not in (
        observed.config.get("source"),
        observed.config.get("volatile.initial_source"),
    ):
        problems.append(f"source is {observed.config.get('source')!r} (cloche wants {source!r})")
    return problems + _mismatches(wanted, observed.config)


def _is_ours(observed: LxdObject) -> bool:
    return observed.description.startswith(MANAGED_MARK)


def plan_pool(storage: StorageConfig, observed: LxdObject | None) -> Step:
    """Decide what to do about the storage pool; raise Conflict rather than touch a foreign one."""
    if storage.source == "existing":
        if observed is None:
            raise NotFound(
                f"LXD has no storage pool {storage.pool!r} to use; create it first, or set "
                "storage.source to loop or device."
            )
        return Step("storage pool", storage.pool, "keep", {"name": storage.pool})
    request = storage_pool_request(storage)
    if observed is None:
        return Step("storage pool", storage.pool, "create", request)
    problems = _pool_mismatches(request, observed)
    if problems:
        owner = "cloche created" if _is_ours(observed) else "cloche did not create"
        raise Conflict(
            f"LXD already has a storage pool {storage.pool!r} that {owner} whose "
            f"{'; '.join(problems)}; cloche leaves it untouched: set storage.pool to another "
            "name, or storage.source: existing to use it as it is."
        )
    return Step("storage pool", storage.pool, "keep", request)


def plan_network(network: NetworkConfig, observed: LxdObject | None) -> Step:
    """Decide what to do about the bridge; only a bridge cloche created is ever changed."""
    request = network_request(network)
    if observed is None:
        return Step("network", network.bridge, "create", request)
    problems = _mismatches(request["config"], observed.config)
    if observed.kind != "bridge":
        problems.insert(0, f"type is {observed.kind!r} (cloche wants 'bridge')")
    if not problems:
        return Step("network", network.bridge, "keep", request)
    if not _is_ours(observed):
        detail = "; ".join(problems) or "it was not created by cloche"
        raise Conflict(
            f"LXD already has a network {network.bridge!r} that cloche did not create, whose "
            f"{detail}; cloche leaves it untouched: set network.bridge to another name in the "
            "config, or remove that network yourself."
        )
    if observed.kind != "bridge":
        raise Conflict(
            f"Network {network.bridge!r} is a {observed.kind} network, not a bridge; "
            "set network.bridge to another name."
        )
    return Step("network", network.bridge, "update", request)


def plan_profile(config: ClocheConfig, observed: LxdObject | None) -> Step:
    """Decide what to do about the base profile; cloche keeps its own profile converged."""
    request = profile_request(config.profile, config.storage.pool, config.network.bridge)
    if observed is None:
        return Step("profile", config.profile.name, "create", request)
    same = observed.config == request["config"] and observed.devices == request["devices"]
    if same:
        return Step("profile", config.profile.name, "keep", request)
    if not _is_ours(observed):
        raise Conflict(
            f"LXD already has a profile {config.profile.name!r} with other settings that cloche "
            "did not create; cloche leaves it untouched: set profile.name to another name."
        )
    return Step("profile", config.profile.name, "update", request)


def plan_lxd(
    config: ClocheConfig,
    pool: LxdObject | None,
    network: LxdObject | None,
    profile: LxdObject | None,
) -> list[Step]:
    """The whole plan, decided before anything changes, so a conflict leaves LXD as it was."""
    return [
        plan_pool(config.storage, pool),
        plan_network(config.network, network),
        plan_profile(config, profile),
    ]


def static_nic(bridge_name: str, address: str) -> dict[str, str]:
    """eth0 with the address cloche assigned, from which alone the guest may send.

    A fixed address keeps forwards and ssh configs valid across restarts; LXD's filters drop
    frames from any other MAC or IPv4 address, ARP for other addresses and all IPv6 (the bridge
    has none), so the firewall's rules may trust a packet's source address.
    """
    return {
        "type": "nic",
        "network": bridge_name,
        "name": "eth0",
        "ipv4.address": address,
        "security.mac_filtering": "true",
        "security.ipv4_filtering": "true",
        "security.ipv6_filtering": "true",
    }
