"""Users (tenants) and their SSH keys: request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from cloche.model.commands import (
    DEFAULT_MAX_ENVS,
    DEFAULT_USER_CPU,
    DEFAULT_USER_DISK,
    DEFAULT_USER_MEMORY,
    NewUser,
    QuotaChanges,
)
from cloche.model.egress import EgressCeiling
from cloche.model.records import Role
from cloche.model.sshkeys import MAX_KEYS
from cloche.model.units import parse_size
from cloche.wire.base import WireModel
from cloche.wire.sizes import PositiveInt, check_size_text, optional_size

EnvironmentCount = Annotated[int, Field(ge=0, le=10_000)]


class CreateUser(WireModel):
    """POST /v1/users."""

    name: str
    ssh_keys: list[str] = Field(min_length=1)
    role: Role = "member"
    max_envs: EnvironmentCount = DEFAULT_MAX_ENVS
    cpu: PositiveInt = DEFAULT_USER_CPU
    memory: str = DEFAULT_USER_MEMORY
    disk: str = DEFAULT_USER_DISK

    _sizes = field_validator("memory", "disk")(check_size_text)

    def to_command(self) -> NewUser:
        """The typed command for core."""
        return NewUser(
            name=self.name,
            ssh_keys=tuple(self.ssh_keys),
            role=self.role,
            max_envs=self.max_envs,
            cpu=self.cpu,
            memory_bytes=parse_size(self.memory),
            disk_bytes=parse_size(self.disk),
        )


class SetQuota(WireModel):
    """PATCH /v1/users/{name}: the quotas to change (others keep theirs)."""

    max_envs: EnvironmentCount | None = None
    cpu: PositiveInt | None = None
    memory: str | None = None
    disk: str | None = None
    max_egress: EgressCeiling | None = None

    _sizes = field_validator("memory", "disk")(check_size_text)

    def to_changes(self) -> QuotaChanges:
        """The typed changes for core."""
        return QuotaChanges(
            max_envs=self.max_envs,
            cpu=self.cpu,
            memory_bytes=optional_size(self.memory),
            disk_bytes=optional_size(self.disk),
            max_egress=self.max_egress,
        )


class HostAccountRequest(WireModel):
    """PUT /v1/users/{name}/host-account: who may call as the user (null: nobody)."""

    host_account: str | None


class KeyRequest(WireModel):
    """POST /v1/users/{name}/keys: one public key line."""

    public_key: str


class KeysRequest(WireModel):
    """POST /v1/users/{name}/keys/batch: several public key lines, added all or none."""

    public_keys: list[str] = Field(min_length=1, max_length=MAX_KEYS)


class User(WireModel):
    """A user with quotas and usage, as GET /v1/users lists them."""

    name: str
    role: Role
    max_envs: int
    cpu: int
    memory: str
    disk: str
    uid_base: int
    uid_size: int
    project: str
    environments: int
    keys: int
    created_at: str
    host_account: str | None
    max_egress: EgressCeiling


class Key(WireModel):
    """One SSH public key of a user."""

    fingerprint: str
    comment: str
    public_key: str


class UserDetail(User):
    """One user with their keys and the names of their environments."""

    ssh_keys: list[Key]
    environment_names: list[str]


class KeyPush(WireModel):
    """Where a key change went: environments pushed, waiting (stopped) and failed (with why)."""

    # Running environments that have the user's current keys.
    pushed: list[str]
    # Stopped environments: they take the current keys when they next start.
    waiting: list[str]
    # Running environments that did not take them (environment name -> reason).
    failed: dict[str, str]


class KeyAdded(WireModel):
    """POST /v1/users/{name}/keys: the key's fingerprint and comment, and where it went."""

    fingerprint: str
    comment: str
    push: KeyPush


class KeyRemoved(WireModel):
    """DELETE /v1/users/{name}/keys/{fingerprint}, and where the change went."""

    fingerprint: str
    push: KeyPush
