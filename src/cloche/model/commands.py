"""What callers ask core to do: typed, validated requests shared by the API and core."""

from __future__ import annotations

from dataclasses import dataclass

from cloche.model.egress import EgressCeiling
from cloche.model.records import Profile, Role

DEFAULT_MAX_ENVS = 5
DEFAULT_USER_CPU = 4
DEFAULT_USER_MEMORY = "8GiB"
DEFAULT_USER_DISK = "50GiB"
DEFAULT_ENV_CPU = 1
DEFAULT_ENV_MEMORY = "1GiB"
DEFAULT_ENV_DISK = "10GiB"
PROFILE_PROCESSES = {"standard": 512, "docker": 1024, "strict": 256}


@dataclass(frozen=True)
class NewUser:
    """A request to add a user (a tenant)."""

    name: str
    ssh_keys: tuple[str, ...]
    role: Role
    max_envs: int
    cpu: int
    memory_bytes: int
    disk_bytes: int


@dataclass(frozen=True)
class QuotaChanges:
    """New quota values for a user; None keeps the current value."""

    max_envs: int | None = None
    cpu: int | None = None
    memory_bytes: int | None = None
    disk_bytes: int | None = None
    max_egress: EgressCeiling | None = None


@dataclass(frozen=True)
class NewEnvironment:
    """A request to create an environment."""

    user: str
    name: str
    image: str | None
    profile: Profile
    cpu: int
    memory_bytes: int
    disk_bytes: int
    processes: int | None


@dataclass(frozen=True)
class LimitChanges:
    """New limits for an environment; None keeps the current value."""

    cpu: int | None = None
    memory_bytes: int | None = None
    disk_bytes: int | None = None
    processes: int | None = None
