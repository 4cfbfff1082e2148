"""The rows of cloche's state database as typed, immutable, self-checking values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal, get_args

from cloche.model.egress import DEFAULT_EGRESS, EGRESS_CEILINGS, EgressCeiling, parse_egress
from cloche.model.errors import Invalid
from cloche.model.names import check_environment_name, check_host_account_name, check_user_name

Role = Literal["admin", "member"]
Profile = Literal["standard", "docker", "strict"]
EnvironmentStatus = Literal["creating", "ready", "failed", "deleting"]
OperationStatus = Literal["running", "succeeded", "failed"]

ROLES: tuple[str, ...] = get_args(Role)
PROFILES: tuple[str, ...] = get_args(Profile)
ENVIRONMENT_STATUSES: tuple[str, ...] = get_args(EnvironmentStatus)
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)
FINISHED_OPERATION_STATUSES: tuple[str, ...] = ("succeeded", "failed")
# SQLite's integers are 64-bit; a larger Python int fails the write instead of being refused.
LARGEST_STORED_INTEGER = 2**63 - 1


class Unset(enum.Enum):
    """The type of UNSET: a keyword argument of an update that was left out, unlike None."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def _check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise Invalid(f"{value!r} is not a valid {kind}; use one of {', '.join(choices)}.")


def _check_positive(kind: str, value: int | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise Invalid(f"{kind} must be a whole number of at least {lowest}, not {value!r}.")
    if value > LARGEST_STORED_INTEGER:
        raise Invalid(
            f"{kind} is {value}, more than the database can hold; give at most "
            f"{LARGEST_STORED_INTEGER}."
        )


def _check_aware(kind: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise Invalid(f"{kind} {value!r} has no time zone; give times in UTC.")


@dataclass(frozen=True, kw_only=True)
class UserRecord:
    """A tenant: who they are, what they may use, and the host uid range their envs map to."""

    name: str
    role: Role
    max_envs: int
    cpu: int
    memory_bytes: int
    disk_bytes: int
    processes: int | None
    uid_base: int
    uid_size: int
    created_at: datetime
    # The host account that may call the daemon's socket as this user (None: none may).
    host_account: str | None = None
    # The widest egress the user may give their own environments.
    max_egress: EgressCeiling = "open"

    def __post_init__(self) -> None:
        check_user_name(self.name)
        if self.host_account is not None:
            check_host_account_name(self.host_account)
        _check_choice("egress ceiling", self.max_egress, EGRESS_CEILINGS)
        _check_choice("role", self.role, ROLES)
        _check_positive("max_envs", self.max_envs, allow_zero=True)
        _check_positive("cpu", self.cpu)
        _check_positive("memory_bytes", self.memory_bytes)
        _check_positive("disk_bytes", self.disk_bytes)
        _check_positive("processes", self.processes)
        _check_positive("uid_base", self.uid_base)
        _check_positive("uid_size", self.uid_size)
        _check_aware("created_at", self.created_at)

    @property
    def uid_end(self) -> int:
        """The first host uid after this user's range."""
        return self.uid_base + self.uid_size


@dataclass(frozen=True, kw_only=True)
class SshKeyRecord:
    """One SSH public key a user signs in with."""

    user: str
    fingerprint: str
    public_key: str
    comment: str
    added_at: datetime

    def __post_init__(self) -> None:
        check_user_name(self.user)
        if not self.fingerprint.strip():
            raise Invalid("The SSH key has an empty fingerprint; compute it from the public key.")
        if not self.public_key.strip() or "\n" in self.public_key.strip():
            raise Invalid(
                "The SSH public key must be one non-empty line such as 'ssh-ed25519 AAAA'."
            )
        _check_aware("added_at", self.added_at)


@dataclass(frozen=True, kw_only=True)
class EnvironmentRecord:
    """What cloche knows of one environment (LXD holds the container itself)."""

    user: str
    name: str
    image: str
    profile: Profile
    cpu: int
    memory_bytes: int
    disk_bytes: int
    processes: int
    status: EnvironmentStatus
    created_at: datetime
    # The last runtime state seen (e.g. "Running"); a hint for listings, LXD is the truth.
    state_hint: str | None = None
    address: str | None = None
    # Key type -> public key line, recorded on first boot and pinned in generated ssh configs.
    host_keys: Mapping[str, str] | None = field(default=None, hash=False)
    # Snapshot retention counts that override the host's (config field name -> count).
    snapshot_policy: Mapping[str, int] | None = field(default=None, hash=False)
    # The stored egress policy: 'open', 'none' or 'allow:CIDR,CIDR' (model/egress.py).
    egress: str = DEFAULT_EGRESS

    def __post_init__(self) -> None:
        check_user_name(self.user)
        check_environment_name(self.name)
        parse_egress(self.egress)
        if not self.image.strip():
            raise Invalid(f"Environment {self.user}/{self.name} has no image; name one.")
        _check_choice("profile", self.profile, PROFILES)
        _check_choice("environment status", self.status, ENVIRONMENT_STATUSES)
        _check_positive("cpu", self.cpu)
        _check_positive("memory_bytes", self.memory_bytes)
        _check_positive("disk_bytes", self.disk_bytes)
        _check_positive("processes", self.processes)
        _check_aware("created_at", self.created_at)
        if self.host_keys is not None and not all(
            isinstance(key, str) and isinstance(value, str) for key, value in self.host_keys.items()
        ):
            raise Invalid("Host keys must map key types to public key lines, both text.")
        if self.snapshot_policy is not None and not all(
            isinstance(key, str) and isinstance(value, int) and not isinstance(value, bool)
            for key, value in self.snapshot_policy.items()
        ):
            raise Invalid("A snapshot policy must map tier names to whole numbers.")

    @property
    def qualified_name(self) -> str:
        """The user/env form people type."""
        return f"{self.user}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class OperationRecord:
    """A long-running action the API answered with an id; clients poll or stream it."""

    id: str
    kind: str
    target: str
    status: OperationStatus
    progress: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    def __post_init__(self) -> None:
        if not self.id:
            raise Invalid("An operation needs an id; let the store assign one.")
        if not self.kind:
            raise Invalid("An operation needs a kind such as 'create environment'.")
        _check_choice("operation status", self.status, OPERATION_STATUSES)
        _check_aware("created_at", self.created_at)
        _check_aware("finished_at", self.finished_at)

    @property
    def finished(self) -> bool:
        """True once the operation succeeded or failed."""
        return self.status in FINISHED_OPERATION_STATUSES


@dataclass(frozen=True, kw_only=True)
class RouteRecord:
    """A published route of one environment, stored in its canonical spelling."""

    user: str
    name: str
    spec: str
    # What no two routes may share (model.routes.route_endpoint); unique in the database.
    endpoint: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_user_name(self.user)
        check_environment_name(self.name)
        if not self.spec or not self.endpoint:
            raise Invalid("A route record needs its spec and endpoint.")
        _check_aware("created_at", self.created_at)
