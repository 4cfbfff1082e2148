"""Users (tenants), their SSH keys, and the allocation of each user's host uid range."""

from __future__ import annotations

import builtins
import dataclasses
import sqlite3
from datetime import datetime
from typing import Final

from cloche.model.egress import EgressCeiling
from cloche.model.errors import Conflict, Invalid, NotFound
from cloche.model.names import no_such_user
from cloche.model.records import UNSET, Role, SshKeyRecord, Unset, UserRecord
from cloche.store.engine import Engine, changes, one_row, refuse_taken, time_text

DEFAULT_UID_SIZE: Final = 65536
DEFAULT_UID_FIRST: Final = 2_000_000
# (uid_t)-1 means "no id" to the kernel, so every range must end at or below it.
UID_END: Final = 2**32 - 1


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        name=row["name"],
        role=row["role"],
        max_envs=row["max_envs"],
        cpu=row["cpu"],
        memory_bytes=row["memory_bytes"],
        disk_bytes=row["disk_bytes"],
        processes=row["processes"],
        uid_base=row["uid_base"],
        uid_size=row["uid_size"],
        created_at=datetime.fromisoformat(row["created_at"]),
        # Absent before migration 8 (tests drive older schemas through the store).
        host_account=row["host_account"] if "host_account" in row.keys() else None,  # noqa: SIM118 - a Row iterates values
        max_egress=row["max_egress"] if "max_egress" in row.keys() else "open",  # noqa: SIM118
    )


def _user_row(user: UserRecord) -> dict[str, object]:
    row = dataclasses.asdict(user)
    row["created_at"] = time_text(user.created_at)
    return row


def _key(row: sqlite3.Row) -> SshKeyRecord:
    return SshKeyRecord(
        user=row["user"],
        fingerprint=row["fingerprint"],
        public_key=row["public_key"],
        comment=row["comment"],
        added_at=datetime.fromisoformat(row["added_at"]),
    )


def require_user(connection: sqlite3.Connection, name: str) -> UserRecord:
    """The user named name, read in the caller's transaction; NotFound if there is none."""
    return _user(
        one_row(
            connection,
            "SELECT * FROM users WHERE name = ?",
            (name,),
            no_such_user(name),
        )
    )


def rows_of_user(
    connection: sqlite3.Connection, user: str | None, everyone: str, of_user: str
) -> list[sqlite3.Row]:
    """Every user's rows (query everyone), or one user's (query of_user, given the name as its
    parameter); NotFound when that user does not exist, so an empty list means they have none."""
    if user is None:
        return connection.execute(everyone).fetchall()
    require_user(connection, user)
    return connection.execute(of_user, (user,)).fetchall()


def count_environments_of(connection: sqlite3.Connection, user: str) -> int:
    """How many environments the user has, in any status, in the caller's transaction."""
    (count,) = connection.execute(
        "SELECT count(*) FROM environments WHERE user = ?", (user,)
    ).fetchone()
    return int(count)


def _lowest_free_uid_base(
    connection: sqlite3.Connection, size: int, first: int, end: int = UID_END
) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise Invalid(f"A uid range size must be a whole number of at least 1, not {size!r}.")
    if isinstance(first, bool) or not isinstance(first, int) or first < 1:
        raise Invalid(f"The first uid of a range must be at least 1 (0 is root), not {first!r}.")
    rows = connection.execute(
        "SELECT uid_base, uid_base + uid_size AS uid_end FROM users "
        "WHERE uid_base + uid_size > ? ORDER BY uid_base",
        (first,),
    )
    candidate = first
    # Ranges never overlap, so sorted by base they are also sorted by end: the first gap
    # before a range that is wide enough is the lowest free base.
    for base, range_end in rows:
        if base >= candidate + size:
            break
        candidate = max(candidate, range_end)
    if candidate + size > end:
        raise Conflict(
            f"No free range of {size} uids is left between {first} and {end}; delete users "
            "that are gone or give new users smaller ranges."
        )
    return candidate


class UserStore:
    """The users table and their SSH keys."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def allocate_uid_base(
        self, size: int = DEFAULT_UID_SIZE, first: int = DEFAULT_UID_FIRST
    ) -> int:
        """The lowest free uid base at or above first (a preview: add() allocates itself)."""
        with self._engine.transaction(write=False) as connection:
            return _lowest_free_uid_base(connection, size, first)

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
        uid_size: int = DEFAULT_UID_SIZE,
        uid_first: int = DEFAULT_UID_FIRST,
    ) -> UserRecord:
        """Add a user with the lowest free range of uid_size ids; Conflict if the name is taken."""
        with self._engine.transaction(write=True) as connection:
            refuse_taken(
                connection,
                "SELECT 1 FROM users WHERE name = ?",
                (name,),
                f"User {name!r} already exists; pick another name.",
            )
            user = UserRecord(
                name=name,
                role=role,
                max_envs=max_envs,
                cpu=cpu,
                memory_bytes=memory_bytes,
                disk_bytes=disk_bytes,
                processes=processes,
                uid_base=_lowest_free_uid_base(connection, uid_size, uid_first),
                uid_size=uid_size,
                created_at=self._engine.clock(),
            )
            connection.execute(
                "INSERT INTO users (name, role, max_envs, cpu, memory_bytes, disk_bytes, "
                "processes, uid_base, uid_size, created_at) VALUES (:name, :role, :max_envs, "
                ":cpu, :memory_bytes, :disk_bytes, :processes, :uid_base, :uid_size, :created_at)",
                _user_row(user),
            )
            return user

    def get(self, name: str) -> UserRecord:
        """The user named name; NotFound if there is none."""
        with self._engine.transaction(write=False) as connection:
            return require_user(connection, name)

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by name."""
        with self._engine.transaction(write=False) as connection:
            rows = connection.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

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
        """Change the quotas given (leave the others as they are); return the updated user."""
        with self._engine.transaction(write=True) as connection:
            user = dataclasses.replace(
                require_user(connection, name),
                **changes(
                    max_envs=max_envs,
                    cpu=cpu,
                    memory_bytes=memory_bytes,
                    disk_bytes=disk_bytes,
                    processes=processes,
                ),
            )
            connection.execute(
                "UPDATE users SET max_envs = :max_envs, cpu = :cpu, memory_bytes = :memory_bytes, "
                "disk_bytes = :disk_bytes, processes = :processes WHERE name = :name",
                _user_row(user),
            )
            return user

    def set_host_account(self, name: str, account: str | None) -> UserRecord:
        """Let the host account call the socket as this user (None: no account may)."""
        with self._engine.transaction(write=True) as connection:
            user = dataclasses.replace(require_user(connection, name), host_account=account)
            if account is not None:
                refuse_taken(
                    connection,
                    "SELECT name FROM users WHERE host_account = ? AND name != ?",
                    (account, name),
                    lambda row: (
                        f"The host account {account!r} already belongs to user {row['name']!r}; "
                        "unmap it there first."
                    ),
                )
            connection.execute("UPDATE users SET host_account = ? WHERE name = ?", (account, name))
            return user

    def set_max_egress(self, name: str, ceiling: EgressCeiling) -> UserRecord:
        """Change the widest egress the user may give their own environments."""
        with self._engine.transaction(write=True) as connection:
            user = dataclasses.replace(require_user(connection, name), max_egress=ceiling)
            connection.execute("UPDATE users SET max_egress = ? WHERE name = ?", (ceiling, name))
            return user

    def by_host_account(self, account: str) -> UserRecord | None:
        """The user the host account calls as, or None."""
        with self._engine.transaction(write=False) as connection:
            row = connection.execute(
                "SELECT * FROM users WHERE host_account = ?", (account,)
            ).fetchone()
        return _user(row) if row is not None else None

    def delete(self, name: str) -> None:
        """Delete a user and their keys, freeing their uid range; Conflict while envs remain."""
        with self._engine.transaction(write=True) as connection:
            require_user(connection, name)
            count = count_environments_of(connection, name)
            if count:
                raise Conflict(
                    f"User {name!r} still has {count} environment(s); delete them first."
                )
            connection.execute("DELETE FROM users WHERE name = ?", (name,))

    # SSH keys -----------------------------------------------------------------------------

    def add_key(
        self, user: str, fingerprint: str, public_key: str, comment: str = ""
    ) -> SshKeyRecord:
        """Record one of a user's SSH public keys; Conflict if they already have it."""
        with self._engine.transaction(write=True) as connection:
            require_user(connection, user)
            key = SshKeyRecord(
                user=user,
                fingerprint=fingerprint,
                public_key=public_key.strip(),
                comment=comment,
                added_at=self._engine.clock(),
            )
            refuse_taken(
                connection,
                "SELECT 1 FROM ssh_keys WHERE user = ? AND fingerprint = ?",
                (user, fingerprint),
                f"User {user!r} already has the key {fingerprint}; nothing to add.",
            )
            connection.execute(
                "INSERT INTO ssh_keys (user, fingerprint, public_key, comment, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key.user, key.fingerprint, key.public_key, key.comment, time_text(key.added_at)),
            )
            return key

    def remove_key(self, user: str, fingerprint: str) -> None:
        """Forget one of a user's keys; NotFound if they do not have it."""
        with self._engine.transaction(write=True) as connection:
            require_user(connection, user)
            deleted = connection.execute(
                "DELETE FROM ssh_keys WHERE user = ? AND fingerprint = ?", (user, fingerprint)
            ).rowcount
            if not deleted:
                raise NotFound(
                    f"User {user!r} has no key {fingerprint}; list their keys to find its "
                    "fingerprint."
                )

    def list_keys(self, user: str | None = None) -> builtins.list[SshKeyRecord]:
        """A user's keys (every user's when user is None), oldest first."""
        with self._engine.transaction(write=False) as connection:
            rows = rows_of_user(
                connection,
                user,
                "SELECT * FROM ssh_keys ORDER BY user, added_at, fingerprint",
                "SELECT * FROM ssh_keys WHERE user = ? ORDER BY added_at, fingerprint",
            )
        return [_key(row) for row in rows]
