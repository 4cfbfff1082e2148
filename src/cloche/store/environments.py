"""Environments: what cloche records of each one (LXD holds the container itself)."""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime

from cloche.model.egress import DEFAULT_EGRESS
from cloche.model.errors import QuotaExceeded
from cloche.model.names import no_such_environment
from cloche.model.records import UNSET, EnvironmentRecord, EnvironmentStatus, Profile, Unset
from cloche.store.engine import Engine, changes, one_row, refuse_taken, time_text
from cloche.store.users import count_environments_of, require_user, rows_of_user

_COLUMNS = (
    "user",
    "name",
    "image",
    "profile",
    "cpu",
    "memory_bytes",
    "disk_bytes",
    "processes",
    "status",
    "state_hint",
    "address",
    "host_keys",
    "created_at",
    "snapshot_policy",
    "egress",
)
_INSERT = (
    "INSERT INTO environments (user, name, image, profile, cpu, memory_bytes, disk_bytes, "
    "processes, status, state_hint, address, host_keys, created_at, snapshot_policy, egress) "
    "VALUES (:user, :name, :image, :profile, :cpu, :memory_bytes, :disk_bytes, :processes, "
    ":status, :state_hint, :address, :host_keys, :created_at, :snapshot_policy, :egress)"
)
# user, name and created_at never change.
_UPDATE = (
    "UPDATE environments SET image = :image, profile = :profile, cpu = :cpu, "
    "memory_bytes = :memory_bytes, disk_bytes = :disk_bytes, processes = :processes, "
    "status = :status, state_hint = :state_hint, address = :address, host_keys = :host_keys, "
    "snapshot_policy = :snapshot_policy, egress = :egress WHERE user = :user AND name = :name"
)


def _json_or_none(value: Mapping[str, object] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True)


def _environment(row: sqlite3.Row) -> EnvironmentRecord:
    host_keys = row["host_keys"]
    policy = row["snapshot_policy"]
    return EnvironmentRecord(
        user=row["user"],
        name=row["name"],
        image=row["image"],
        profile=row["profile"],
        cpu=row["cpu"],
        memory_bytes=row["memory_bytes"],
        disk_bytes=row["disk_bytes"],
        processes=row["processes"],
        status=row["status"],
        state_hint=row["state_hint"],
        address=row["address"],
        host_keys=None if host_keys is None else json.loads(host_keys),
        created_at=datetime.fromisoformat(row["created_at"]),
        snapshot_policy=None if policy is None else json.loads(policy),
        egress=row["egress"],
    )


def _environment_row(environment: EnvironmentRecord) -> dict[str, object]:
    row = {column: getattr(environment, column) for column in _COLUMNS}
    row["host_keys"] = _json_or_none(environment.host_keys)
    row["snapshot_policy"] = _json_or_none(environment.snapshot_policy)
    row["created_at"] = time_text(environment.created_at)
    return row


def require_environment(connection: sqlite3.Connection, user: str, name: str) -> EnvironmentRecord:
    """The environment user/name, read in the caller's transaction; NotFound if there is none."""
    return _environment(
        one_row(
            connection,
            "SELECT * FROM environments WHERE user = ? AND name = ?",
            (user, name),
            no_such_environment(user, name),
        )
    )


def _refuse_taken_address(connection: sqlite3.Connection, environment: EnvironmentRecord) -> None:
    if environment.address is None:
        return
    refuse_taken(
        connection,
        "SELECT user, name FROM environments WHERE address = ? AND NOT (user = ? AND name = ?)",
        (environment.address, environment.user, environment.name),
        lambda owner: (
            f"Address {environment.address} already belongs to {owner['user']}/{owner['name']}; "
            "pick a free address."
        ),
    )


class EnvironmentStore:
    """The environments table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
        egress: str = DEFAULT_EGRESS,
    ) -> EnvironmentRecord:
        """Record a new environment; QuotaExceeded at max_envs, checked in the same transaction."""
        with self._engine.transaction(write=True) as connection:
            owner = require_user(connection, user)
            environment = EnvironmentRecord(
                user=user,
                name=name,
                image=image,
                profile=profile,
                cpu=cpu,
                memory_bytes=memory_bytes,
                disk_bytes=disk_bytes,
                processes=processes,
                status=status,
                state_hint=state_hint,
                address=address,
                host_keys=None if host_keys is None else dict(host_keys),
                created_at=self._engine.clock(),
                snapshot_policy=None if snapshot_policy is None else dict(snapshot_policy),
                egress=egress,
            )
            refuse_taken(
                connection,
                "SELECT 1 FROM environments WHERE user = ? AND name = ?",
                (user, name),
                f"User {user!r} already has an environment named {name!r}; pick another name.",
            )
            count = count_environments_of(connection, user)
            if count >= owner.max_envs:
                raise QuotaExceeded(
                    f"User {user!r} already has {count} of their {owner.max_envs} environments; "
                    "delete one or ask an admin to raise max_envs."
                )
            _refuse_taken_address(connection, environment)
            connection.execute(_INSERT, _environment_row(environment))
            return environment

    def get(self, user: str, name: str) -> EnvironmentRecord:
        """The environment user/name; NotFound if there is none."""
        with self._engine.transaction(write=False) as connection:
            return require_environment(connection, user, name)

    def list(self, user: str | None = None) -> builtins.list[EnvironmentRecord]:
        """A user's environments (everyone's when user is None), by user then name."""
        with self._engine.transaction(write=False) as connection:
            rows = rows_of_user(
                connection,
                user,
                "SELECT * FROM environments ORDER BY user, name",
                "SELECT * FROM environments WHERE user = ? ORDER BY name",
            )
        return [_environment(row) for row in rows]

    def count(self, user: str) -> int:
        """How many environments the user has, in any status."""
        with self._engine.transaction(write=False) as connection:
            return count_environments_of(connection, user)

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
        if isinstance(host_keys, Mapping):
            host_keys = dict(host_keys)
        if isinstance(snapshot_policy, Mapping):
            snapshot_policy = dict(snapshot_policy)
        with self._engine.transaction(write=True) as connection:
            environment = dataclasses.replace(
                require_environment(connection, user, name),
                **changes(
                    image=image,
                    profile=profile,
                    cpu=cpu,
                    memory_bytes=memory_bytes,
                    disk_bytes=disk_bytes,
                    processes=processes,
                    status=status,
                    state_hint=state_hint,
                    address=address,
                    host_keys=host_keys,
                    snapshot_policy=snapshot_policy,
                    egress=egress,
                ),
            )
            _refuse_taken_address(connection, environment)
            connection.execute(_UPDATE, _environment_row(environment))
            return environment

    def delete(self, user: str, name: str) -> None:
        """Forget the environment user/name; NotFound if there is none."""
        with self._engine.transaction(write=True) as connection:
            require_environment(connection, user, name)
            connection.execute("DELETE FROM environments WHERE user = ? AND name = ?", (user, name))
