"""Pure: an instance's devices cloche owns, and the plan to converge them.

Those are eth0 (the static address cloche assigned, with LXD's MAC, IPv4 and IPv6 filtering so
the guest cannot send from any other address or answer ARP for one) and the proxy devices that
publish tcp:// and udp:// routes.

A proxy device makes LXD listen on the host's HOST_PORT (all IPv4 addresses) and connect, inside
the environment, to 127.0.0.1:ENV_PORT: the service needs no other address and the environment's
own firewall sees a local connection. Devices cloche manages are named ``cloche-<proto>-<port>``;
other devices on the instance are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cloche.model.routes import PortRoute

DEVICE_PREFIX = "cloche-"
NIC = "eth0"


def device_name(route: PortRoute) -> str:
    """The instance device that carries route, e.g. 'cloche-tcp-2222'."""
    return f"{DEVICE_PREFIX}{route.protocol}-{route.host_port}"


def proxy_device(route: PortRoute) -> dict[str, str]:
    """The LXD device config for route."""
    return {
        "type": "proxy",
        "listen": f"{route.protocol}:0.0.0.0:{route.host_port}",
        "connect": f"{route.protocol}:127.0.0.1:{route.env_port}",
    }


@dataclass(frozen=True)
class DevicePlan:
    """What to add (or replace) and remove on one instance; empty when it already matches."""

    add: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the instance already has exactly the devices it should."""
        return not self.add and not self.remove


def plan_devices(
    current: Mapping[str, Mapping[str, str]],
    routes: Iterable[PortRoute],
    nic: Mapping[str, str] | None = None,
) -> DevicePlan:
    """Compare an instance's own devices with its eth0 and its port routes; only cloche's
    devices change (eth0 only when nic is given)."""
    desired = {device_name(route): dict(proxy_device(route)) for route in routes}
    if nic is not None:
        desired[NIC] = dict(nic)
    add = {
        name: config
        for name, config in sorted(desired.items())
        if dict(current.get(name) or {}) != config
    }
    remove = tuple(
        sorted(name for name in current if name.startswith(DEVICE_PREFIX) and name not in desired)
    )
    return DevicePlan(add=add, remove=remove)
