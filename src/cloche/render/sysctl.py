"""Pure: the kernel settings a host of many containers needs, and which of them to raise."""

from __future__ import annotations

from collections.abc import Mapping

# LXD's documented production settings; with this VM's defaults the 19th container cannot boot
# (systemd runs out of inotify instances), see docs/operations.md.
MINIMUM_KERNEL_SETTINGS: dict[str, int] = {
    "fs.inotify.max_queued_events": 1048576,
    "fs.inotify.max_user_instances": 1048576,
    "fs.inotify.max_user_watches": 1048576,
    "kernel.keys.maxbytes": 2000000,
    "kernel.keys.maxkeys": 2000,
    # br_netfilter: bridged traffic between environments passes the firewall's forward hook,
    # which is where tenants are kept apart (render/nftables.py).
    "net.bridge.bridge-nf-call-ip6tables": 1,
    "net.bridge.bridge-nf-call-iptables": 1,
    "net.ipv4.neigh.default.gc_thresh3": 8192,
    "vm.max_map_count": 262144,
}

SYSCTL_FILE = "/etc/sysctl.d/60-cloche.conf"
# Where br_netfilter is a loadable module (not built in), it must be loaded at every boot before
# the settings above can be applied and before any environment starts.
BRIDGE_MODULE = "br_netfilter"
MODULES_FILE = "/etc/modules-load.d/cloche.conf"


def render_modules_load() -> str:
    """The modules-load.d file that loads br_netfilter at boot."""
    return (
        "# Written by 'cloche host init': bridged traffic between environments must pass the\n"
        "# firewall's forward hook (tenant isolation), which needs br_netfilter.\n"
        f"{BRIDGE_MODULE}\n"
    )


def settings_to_raise(current: Mapping[str, int | None]) -> dict[str, int]:
    """The settings below cloche's minimum (never lowers one an admin set higher)."""
    return {
        key: minimum
        for key, minimum in MINIMUM_KERNEL_SETTINGS.items()
        if current.get(key) is None or int(current[key] or 0) < minimum
    }


def render_sysctl_conf(current: Mapping[str, int | None]) -> str:
    """The persisted sysctl.d file: cloche's minimums, or the host's higher values."""
    lines = [
        "# Written by 'cloche host init': kernel settings for many containers.",
        "# Values already higher on this host are kept as they were.",
    ]
    for key, minimum in MINIMUM_KERNEL_SETTINGS.items():
        value = max(minimum, int(current.get(key) or 0))
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
