"""Environments: create, list, info, resize (request and response bodies)."""

from __future__ import annotations

from pydantic import field_validator

from cloche.model.commands import (
    DEFAULT_ENV_CPU,
    DEFAULT_ENV_DISK,
    DEFAULT_ENV_MEMORY,
    LimitChanges,
    NewEnvironment,
)
from cloche.model.records import EnvironmentStatus, Profile
from cloche.model.units import parse_size
from cloche.wire.base import WireModel
from cloche.wire.sizes import PositiveInt, ProcessCount, check_size_text, optional_size


class CreateEnvironment(WireModel):
    """POST /v1/environments."""

    user: str
    name: str
    image: str | None = None
    profile: Profile = "standard"
    cpu: PositiveInt = DEFAULT_ENV_CPU
    memory: str = DEFAULT_ENV_MEMORY
    disk: str = DEFAULT_ENV_DISK
    processes: ProcessCount | None = None

    _sizes = field_validator("memory", "disk")(check_size_text)

    def to_command(self) -> NewEnvironment:
        """The typed command for core."""
        return NewEnvironment(
            user=self.user,
            name=self.name,
            image=self.image,
            profile=self.profile,
            cpu=self.cpu,
            memory_bytes=parse_size(self.memory),
            disk_bytes=parse_size(self.disk),
            processes=self.processes,
        )


class Resize(WireModel):
    """PATCH /v1/environments/{user}/{name}: the limits to change (others keep theirs)."""

    cpu: PositiveInt | None = None
    memory: str | None = None
    disk: str | None = None
    processes: ProcessCount | None = None

    _sizes = field_validator("memory", "disk")(check_size_text)

    def to_changes(self) -> LimitChanges:
        """The typed changes for core."""
        return LimitChanges(
            cpu=self.cpu,
            memory_bytes=optional_size(self.memory),
            disk_bytes=optional_size(self.disk),
            processes=self.processes,
        )


class Limits(WireModel):
    """What one environment may use; sizes as LXD writes them ('2GiB')."""

    cpu: int
    memory: str
    disk: str
    processes: int


class Environment(WireModel):
    """An environment with its live state (from LXD) and its address, as listings show it."""

    user: str
    name: str
    status: EnvironmentStatus
    # LXD's status ('Running', 'Stopped', ...), 'Missing' when LXD has no such instance, or
    # the last seen state while the environment is being created.
    state: str
    address: str | None
    image: str
    profile: Profile
    limits: Limits
    # Key type -> public key line, pinned in generated ssh configs.
    host_keys: dict[str, str]
    egress: str
    created_at: str


class EnvironmentInfo(Environment):
    """One environment with the specs of its published routes."""

    routes: list[str]
