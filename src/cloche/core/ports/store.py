"""The state store's ports: users, environments, routes, operations, bans, tokens (in store/)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from cloche.model.bans import Ban, Failure
from cloche.model.egress import EgressCeiling
from cloche.model.records import (
    UNSET,
    EnvironmentRecord,
    EnvironmentStatus,
    OperationRecord,
    OperationStatus,
    Profile,
    Role,
    RouteRecord,
    SshKeyRecord,
    Unset,
    UserRecord,
)
from cloche.model.tokens import TokenRecord

# The adapter is cloche.store.database.Database. `list` is a method name here, so inside these
# classes the list type is spelled builtins.list.


class UserStore(Protocol):
    """Users (tenants) and their SSH keys; each user's host uid range is allocated on add."""

    def add(
        self,
        name: str,
        *,
        role: Role = "member",
        max_envs: int,
        cpu: int,
        memory_bytes: int,
        disk_bytes: int,
        processes: int | None = None,
        uid_size: int = ...,
        uid_first: int = ...,
    ) -> UserRecord:
        """Add a user with the lowest free uid range; Conflict if the name is taken."""

    def get(self, name: str) -> UserRecord:
        """The user named name; NotFound if there is none."""

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by name."""

    def set_host_account(self, name: str, account: str | None) -> UserRecord:
        """Let the host account call the socket as this user (None: no account may)."""

    def by_host_account(self, account: str) -> UserRecord | None:
        """The user the host account calls as, or None."""

    def set_max_egress(self, name: str, ceiling: EgressCeiling) -> UserRecord:
        """Change the widest egress the user may give their own environments."""

    def update_quotas(
        self,
        name: str,
        *,
        max_envs: int | Unset = UNSET,
        cpu: int | Unset = UNSET,
        memory_bytes: int | Unset = UNSET,
        disk_bytes: int | Unset = UNSET,
        processes: int | Unset | None = UNSET,
    ) -> UserRecord:
        """Change the quotas given; return the updated user."""

    def delete(self, name: str) -> None:
        """Delete a user and their keys; Conflict while they have environments."""

    def add_key(
        self, user: str, fingerprint: str, public_key: str, comment: str = ""
    ) -> SshKeyRecord:
        """Record one of a user's SSH public keys; Conflict if they already have it."""

    def remove_key(self, user: str, fingerprint: str) -> None:
        """Forget one of a user's keys; NotFound if they do not have it."""

    def list_keys(self, user: str | None = None) -> builtins.list[SshKeyRecord]:
        """A user's keys (every user's when user is None), oldest first."""


class EnvironmentStore(Protocol):
    """What cloche records of each environment, its egress policy included."""

    def add(
        self,
        user: str,
        name: str,
        *,
        image: str,
        profile: Profile,
        cpu: int,
        memory_bytes: int,
        disk_bytes: int,
        processes: int,
        status: EnvironmentStatus = "creating",
        state_hint: str | None = None,
        address: str | None = None,
        host_keys: Mapping[str, str] | None = None,
        snapshot_policy: Mapping[str, int] | None = None,
        egress: str = ...,
    ) -> EnvironmentRecord:
        """Record a new environment; Conflict if the name or address is taken, QuotaExceeded."""

    def get(self, user: str, name: str) -> EnvironmentRecord:
        """The environment user/name; NotFound if there is none."""

    def list(self, user: str | None = None) -> builtins.list[EnvironmentRecord]:
        """A user's environments (everyone's when user is None), by user then name."""

    def count(self, user: str) -> int:
        """How many environments the user has, in any status."""

    def update(
        self,
        user: str,
        name: str,
        *,
        image: str | Unset = UNSET,
        profile: Profile | Unset = UNSET,
        cpu: int | Unset = UNSET,
        memory_bytes: int | Unset = UNSET,
        disk_bytes: int | Unset = UNSET,
        processes: int | Unset = UNSET,
        status: EnvironmentStatus | Unset = UNSET,
        state_hint: str | Unset | None = UNSET,
        address: str | Unset | None = UNSET,
        host_keys: Mapping[str, str] | Unset | None = UNSET,
        snapshot_policy: Mapping[str, int] | Unset | None = UNSET,
        egress: str | Unset = UNSET,
    ) -> EnvironmentRecord:
        """Change the fields given (None clears a nullable one); return the updated record."""

    def delete(self, user: str, name: str) -> None:
        """Forget the environment user/name; NotFound if there is none."""


class RouteStore(Protocol):
    """Published routes; an endpoint belongs to one environment at most."""

    def add(self, user: str, name: str, spec: str, endpoint: str) -> RouteRecord:
        """Store a published route; Conflict when its endpoint is taken."""

    def remove(self, user: str, name: str, spec: str) -> RouteRecord:
        """Forget one route of user/name; NotFound when it is not published there."""

    def list(self, user: str | None = None, name: str | None = None) -> builtins.list[RouteRecord]:
        """Published routes, of one user or one environment when given, in a stable order."""


class OperationStore(Protocol):
    """Long-running operations: their progress and how they ended."""

    def create(self, kind: str, target: str, progress: str = "") -> OperationRecord:
        """Start tracking a running operation under a new id."""

    def update(
        self,
        operation_id: str,
        *,
        status: OperationStatus | Unset = UNSET,
        progress: str | Unset = UNSET,
        error: str | Unset | None = UNSET,
    ) -> OperationRecord:
        """Report progress or the end of an operation; Conflict once it has finished."""

    def get(self, operation_id: str) -> OperationRecord:
        """The operation with this id; NotFound if there is none."""

    def list(
        self,
        *,
        status: OperationStatus | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[OperationRecord]:
        """Operations, newest first, optionally only those with this status or target."""

    def fail_unfinished(self, error: str) -> int:
        """Mark every running operation failed; return how many."""


class BanStore(Protocol):
    """Brute-force bans of the host's sshd and the recent failed connections they count."""

    def record_outcomes(self, outcomes: Iterable[tuple[str, int, bool]], at: datetime) -> None:
        """Note failed connections (address, port, True); forgive accepted ones (False)."""

    def failures(self, since: datetime) -> builtins.list[Failure]:
        """Failed connections after since, oldest first."""

    def forget_failures(self, *, before: datetime | None = None, address: str | None = None) -> int:
        """Forget failures older than before, or all of address's; return how many."""

    def change(self, add: Iterable[Ban], drop: Iterable[str]) -> None:
        """Drop the bans of these addresses, then add these (forgetting their failures)."""

    def remove(self, address: str) -> Ban:
        """Lift the ban of address and forget its failures; NotFound when it is not banned."""

    def list(self) -> builtins.list[Ban]:
        """Every stored ban (run-out ones too, until dropped), by address."""


class TokenStore(Protocol):
    """API tokens, their secrets kept only as hashes."""

    def add(self, token: TokenRecord, secret_hash: str) -> TokenRecord:
        """Record a new token of an existing user."""

    def get(self, token_id: str) -> TokenRecord:
        """The token with this id; NotFound if there is none."""

    def by_hash(self, secret_hash: str) -> TokenRecord | None:
        """The token whose secret has this hash, or None."""

    def list(self, user: str | None = None) -> builtins.list[TokenRecord]:
        """Every token (of one user when given)."""

    def revoke(self, token_id: str) -> TokenRecord:
        """Mark a token revoked."""

    def touch(self, token_id: str, at: datetime) -> None:
        """Note the token's latest use."""

    def add_environments(self, token_id: str, names: Iterable[str]) -> None:
        """Widen an environment-limited token to environments it created itself."""


class StateStore(Protocol):
    """cloche's state: the five aggregates over one database."""

    @property
    def users(self) -> UserStore:
        """Users and their SSH keys."""

    @property
    def environments(self) -> EnvironmentStore:
        """Environment records."""

    @property
    def routes(self) -> RouteStore:
        """Published routes."""

    @property
    def operations(self) -> OperationStore:
        """Long-running operations."""

    @property
    def bans(self) -> BanStore:
        """Brute-force bans of the host's sshd."""

    @property
    def tokens(self) -> TokenStore:
        """API tokens."""

    def migrate(self, up_to: int | None = None) -> int:
        """Bring the schema to up_to (default: the latest); return the version reached."""

    def close(self) -> None:
        """Close the store; it cannot be used afterwards."""
