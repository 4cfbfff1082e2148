"""Pure typed values: environment limits, tenant quotas and uid ranges, security profile names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloche.model.errors import Invalid
from cloche.model.units import format_size

SecurityProfile = Literal["standard", "docker", "strict"]
SECURITY_PROFILES: tuple[SecurityProfile, ...] = ("standard", "docker", "strict")

MIB = 1024**2
GIB = 1024**3
MINIMUM_MEMORY_BYTES = 64 * MIB
MINIMUM_DISK_BYTES = 512 * MIB
# systemd, journald, networkd, resolved, sshd and a login shell already take about 30.
MINIMUM_PROCESSES = 32
# A POSIX system needs ids 0 to 65534 (nobody); LXD refuses a smaller isolated map.
MINIMUM_ID_RANGE = 65536


def _at_least(what: str, value: int, minimum: int, shown: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{what} must be a whole number, not {value!r}.")
    if value < minimum:
        raise Invalid(f"{what} is {value}; it must be at least {shown}.")


@dataclass(frozen=True)
class Limits:
    """What one environment may use: CPUs, memory, root disk and processes."""

    cpu: int
    memory_bytes: int
    disk_bytes: int
    processes: int

    def __post_init__(self) -> None:
        _at_least("The CPU limit", self.cpu, 1, "1")
        _at_least("The memory limit", self.memory_bytes, MINIMUM_MEMORY_BYTES, "64MiB")
        _at_least("The disk limit", self.disk_bytes, MINIMUM_DISK_BYTES, "512MiB")
        _at_least("The process limit", self.processes, MINIMUM_PROCESSES, "32")

    def describe(self) -> str:
        """A short human form, e.g. '2 CPU, 2GiB memory, 10GiB disk, 512 processes'."""
        return (
            f"{self.cpu} CPU, {format_size(self.memory_bytes)} memory, "
            f"{format_size(self.disk_bytes)} disk, {self.processes} processes"
        )


@dataclass(frozen=True)
class ProjectQuotas:
    """What all of one user's environments together may use, and whether Docker is allowed."""

    environments: int
    cpu: int
    memory_bytes: int
    disk_bytes: int
    processes: int
    docker: bool = False

    def __post_init__(self) -> None:
        _at_least("The environment quota", self.environments, 0, "0")
        _at_least("The CPU quota", self.cpu, 1, "1")
        _at_least("The memory quota", self.memory_bytes, MINIMUM_MEMORY_BYTES, "64MiB")
        _at_least("The disk quota", self.disk_bytes, MINIMUM_DISK_BYTES, "512MiB")
        _at_least("The process quota", self.processes, MINIMUM_PROCESSES, "32")
        if not isinstance(self.docker, bool):
            raise Invalid(f"The docker permission must be true or false, not {self.docker!r}.")


@dataclass(frozen=True)
class IdRange:
    """A tenant's own host uid/gid range: container id 0 is host id base."""

    base: int
    size: int = MINIMUM_ID_RANGE

    def __post_init__(self) -> None:
        _at_least("The uid range base", self.base, 1, "1")
        _at_least("The uid range size", self.size, MINIMUM_ID_RANGE, str(MINIMUM_ID_RANGE))

    @property
    def end(self) -> int:
        """The first host id after the range."""
        return self.base + self.size

    def overlaps(self, other: IdRange) -> bool:
        """True when the two ranges share a host id."""
        return self.base < other.end and other.base < self.end
