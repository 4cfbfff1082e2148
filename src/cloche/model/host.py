"""Values that cross the host ports: LXD's host-wide objects, how Caddy runs, path kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PathKind = Literal["missing", "block device", "other"]

# The Debian packages a cloche host needs (host init installs the missing ones).
REQUIRED_PACKAGES: tuple[str, ...] = (
    "lxd",
    "lxd-client",
    "lxcfs",
    "debootstrap",
    "btrfs-progs",
    "openssh-server",
    "openssh-client",
    "nftables",
    "conntrack",
    "caddy",
    "restic",
    "zstd",
    "xz-utils",
    "iproute2",
    "ca-certificates",
    "curl",
)


@dataclass(frozen=True)
class LxdObject:
    """What cloche reads back of a pool, network, profile or project."""

    name: str
    description: str = ""
    config: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)
    driver: str = ""
    kind: str = ""
    managed: bool = True


@dataclass(frozen=True)
class CaddyService:
    """How cloche runs Caddy: its binary, home, config file, environment, user, admin socket."""

    binary: str
    directory: str
    config_file: str
    environment: dict[str, str]
    user: str
    admin_socket: str
