"""The API's request bodies: pydantic models that turn JSON into core's typed commands."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloche.model.commands import (
    DEFAULT_ENV_CPU,
    DEFAULT_ENV_DISK,
    DEFAULT_ENV_MEMORY,
    DEFAULT_MAX_ENVS,
    DEFAULT_USER_CPU,
    DEFAULT_USER_DISK,
    DEFAULT_USER_MEMORY,
    LimitChanges,
    NewEnvironment,
    NewUser,
    QuotaChanges,
)
from cloche.model.errors import Invalid
from cloche.model.units import parse_size

PositiveInt = Annotated[int, Field(ge=1, le=4096)]


def _size(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except Invalid as error:
        raise ValueError(str(error)) from None


def _check_size_text(value: str | None) -> str | None:
    _size(value)
    return value


# Who asks: the CLI and SDK send the local user's name; every mutating route audits it.
Actor = Annotated[str, Header(alias="X-Cloche-Actor")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUser(_Body):
    """POST /v1/users."""

    name: str
    ssh_keys: list[str] = Field(min_length=1)
    role: Literal["admin", "member"] = "member"
    max_envs: Annotated[int, Field(ge=0, le=10_000)] = DEFAULT_MAX_ENVS
    cpu: PositiveInt = DEFAULT_USER_CPU
    memory: str = DEFAULT_USER_MEMORY
    disk: str = DEFAULT_USER_DISK

    _sizes = field_validator("memory", "disk")(_check_size_text)

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


class SetQuota(_Body):
    """PATCH /v1/users/{name}."""

    max_envs: Annotated[int, Field(ge=0, le=10_000)] | None = None
    cpu: PositiveInt | None = None
    memory: str | None = None
    disk: str | None = None

    _sizes = field_validator("memory", "disk")(_check_size_text)

    def to_changes(self) -> QuotaChanges:
        """The typed changes for core."""
        return QuotaChanges(
            max_envs=self.max_envs,
            cpu=self.cpu,
            memory_bytes=_size(self.memory),
            disk_bytes=_size(self.disk),
        )


class KeyRequest(_Body):
    """POST /v1/users/{name}/keys."""

    public_key: str


class CreateEnvironment(_Body):
    """POST /v1/environments."""

    user: str
    name: str
    image: str | None = None
    profile: Literal["standard", "docker", "strict"] = "standard"
    cpu: PositiveInt = DEFAULT_ENV_CPU
    memory: str = DEFAULT_ENV_MEMORY
    disk: str = DEFAULT_ENV_DISK
    processes: Annotated[int, Field(ge=32, le=1_000_000)] | None = None

    _sizes = field_validator("memory", "disk")(_check_size_text)

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


class Resize(_Body):
    """PATCH /v1/environments/{user}/{name}."""

    cpu: PositiveInt | None = None
    memory: str | None = None
    disk: str | None = None
    processes: Annotated[int, Field(ge=32, le=1_000_000)] | None = None

    _sizes = field_validator("memory", "disk")(_check_size_text)

    def to_changes(self) -> LimitChanges:
        """The typed changes for core."""
        return LimitChanges(
            cpu=self.cpu,
            memory_bytes=_size(self.memory),
            disk_bytes=_size(self.disk),
            processes=self.processes,
        )


class ExecRequest(_Body):
    """POST /v1/environments/{user}/{name}/exec."""

    command: list[str] = Field(min_length=1)
    stdin_base64: str = ""
    root: bool = False
