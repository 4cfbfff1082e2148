"""Pure: what crosses the LXD port (instances, their state, exec results, snapshots, boots), the
labels cloche puts on instances and the instance config keys that carry an environment's limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cloche.model.errors import HostFailure
from cloche.model.limits import Limits
from cloche.model.units import format_size

# The labels cloche writes on every instance (and on a tenant's project) it makes.
OWNER_KEY = "user.cloche.owner"
# LXD never starts an environment at boot by itself: cloche does, after the firewall.
AUTOSTART_KEY = "boot.autostart"
ROLE_KEY = "user.cloche.role"
ROLE_ENVIRONMENT = "environment"
ROLE_TEMPLATE = "template"

# The instance config keys an environment's limits live in (the root disk's size is a device's).
CPU_KEY = "limits.cpu"
MEMORY_KEY = "limits.memory"
PROCESSES_KEY = "limits.processes"


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as LXD describes it: status, profiles and its own (unexpanded) settings."""

    name: str
    status: str
    profiles: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """True when LXD reports the instance running."""
        return self.status == "Running"

    @property
    def owner(self) -> str | None:
        """The cloche user the instance belongs to."""
        return self.config.get(OWNER_KEY)

    @property
    def role(self) -> str | None:
        """'environment' or 'template' for instances cloche made, else None."""
        return self.config.get(ROLE_KEY)


@dataclass(frozen=True)
class InstanceState:
    """A running instance's live facts: status, reported addresses, memory and processes."""

    name: str
    status: str
    # What the guest configured on eth0 (global IPv4), in its order: observed, never trusted;
    # an environment's address is the one in cloche's records.
    addresses: tuple[str, ...]
    memory_bytes: int
    processes: int
    pid: int


@dataclass(frozen=True)
class ExecResult:
    """What a command run inside an instance returned."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of an instance as LXD lists it: its name and when it was taken (UTC)."""

    name: str
    created_at: datetime


@dataclass(frozen=True)
class BootReport:
    """How an instance finished booting: systemd 'running', or 'degraded' with its failed units."""

    name: str
    state: Literal["running", "degraded"]
    failed_units: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class TemplateReport:
    """What ensure_template did, and how long each step took (seconds)."""

    name: str
    action: Literal["created", "recreated", "kept"]
    create_seconds: float = 0.0
    first_start_seconds: float = 0.0
    boot_seconds: float = 0.0
    stop_seconds: float = 0.0


class BootFailure(HostFailure):
    """An instance stopped (or never got up) while booting; console_tail tells why."""

    def __init__(self, message: str, console_tail: str) -> None:
        super().__init__(message)
        self.console_tail = console_tail


def limits_config(limits: Limits) -> dict[str, str]:
    """The instance config keys that carry an environment's CPU, memory and process limits."""
    return {
        CPU_KEY: str(limits.cpu),
        MEMORY_KEY: format_size(limits.memory_bytes),
        PROCESSES_KEY: str(limits.processes),
    }


def sized_root(root: Mapping[str, str], disk_bytes: int) -> dict[str, str]:
    """A root disk device with its size set to disk_bytes."""
    return {**root, "size": format_size(disk_bytes)}


def limits_patch(limits: Limits, root: Mapping[str, str]) -> dict[str, Any]:
    """The PATCH body that gives an instance (whose root disk device is root) new limits."""
    return {
        "config": limits_config(limits),
        "devices": {"root": sized_root(root, limits.disk_bytes)},
    }
