"""cloche's state in SQLite (plain sqlite3): numbered schema migrations and typed repositories.

Threads: each thread gets its own connection (made on first use, closed by close() or once the
thread has ended), because sqlite3 connections must not be shared by threads that use them at the
same time. WAL lets readers run beside the single writer. Every writing method runs in one
`BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before its first read, so
check-then-write sequences (duplicate names, uid ranges, the env count quota) cannot interleave,
whether the other writer is a thread of this process or another process. Waiting for the lock is
bounded by busy_timeout.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound, QuotaExceeded
from cloche.model.records import (
    EnvironmentRecord,
    EnvironmentStatus,
    OperationRecord,
    OperationStatus,
    Profile,
    Role,
    RouteRecord,
    SshKeyRecord,
    UserRecord,
)

DEFAULT_UID_SIZE: Final = 65536
DEFAULT_UID_FIRST: Final = 2_000_000
# (uid_t)-1 means "no id" to the kernel, so every range must end at or below it.
UID_END: Final = 2**32 - 1
BUSY_TIMEOUT_MILLISECONDS: Final = 10_000

# Append only: never edit a migration that has shipped, add a new one. Each runs in one
# transaction, so avoid statements SQLite refuses inside one (VACUUM, PRAGMA foreign_keys).
MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: tenants and their keys.
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        max_envs INTEGER NOT NULL CHECK (max_envs >= 0),
        cpu INTEGER NOT NULL CHECK (cpu > 0),
        memory_bytes INTEGER NOT NULL CHECK (memory_bytes > 0),
        disk_bytes INTEGER NOT NULL CHECK (disk_bytes > 0),
        processes INTEGER CHECK (processes IS NULL OR processes > 0),
        uid_base INTEGER NOT NULL UNIQUE CHECK (uid_base > 0),
        uid_size INTEGER NOT NULL CHECK (uid_size > 0),
        created_at TEXT NOT NULL
    ) STRICT;

    -- Ranges cannot overlap: a shared host uid would let one tenant's breakout own another's
    -- files. The store allocates correctly; these triggers make a bug fail loudly instead.
    CREATE TRIGGER users_uid_ranges_apart_on_insert
    BEFORE INSERT ON users
    WHEN EXISTS (
        SELECT 1 FROM users
        WHERE uid_base < NEW.uid_base + NEW.uid_size AND NEW.uid_base < uid_base + uid_size
    )
    BEGIN
        SELECT RAISE(ABORT, 'uid range overlaps another user''s range');
    END;

    CREATE TRIGGER users_uid_ranges_apart_on_update
    BEFORE UPDATE OF uid_base, uid_size ON users
    WHEN EXISTS (
        SELECT 1 FROM users
        WHERE name != NEW.name
          AND uid_base < NEW.uid_base + NEW.uid_size AND NEW.uid_base < uid_base + uid_size
    )
    BEGIN
        SELECT RAISE(ABORT, 'uid range overlaps another user''s range');
    END;

    CREATE TABLE ssh_keys (
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        public_key TEXT NOT NULL,
        comment TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL,
        PRIMARY KEY (user, fingerprint)
    ) STRICT;

    -- sshd logs the fingerprint of the key that signed in; this finds its owner.
    CREATE INDEX ssh_keys_by_fingerprint ON ssh_keys (fingerprint);
    """,
    # 2: environments and long-running operations.
    """
    CREATE TABLE environments (
        user TEXT NOT NULL REFERENCES users (name) ON DELETE RESTRICT,
        name TEXT NOT NULL,
        image TEXT NOT NULL,
        profile TEXT NOT NULL CHECK (profile IN ('standard', 'docker', 'strict')),
        cpu INTEGER NOT NULL CHECK (cpu > 0),
        memory_bytes INTEGER NOT NULL CHECK (memory_bytes > 0),
        disk_bytes INTEGER NOT NULL CHECK (disk_bytes > 0),
        processes INTEGER NOT NULL CHECK (processes > 0),
        status TEXT NOT NULL CHECK (status IN ('creating', 'ready', 'failed', 'deleting')),
        state_hint TEXT,
        address TEXT UNIQUE,
        host_keys TEXT CHECK (host_keys IS NULL OR json_valid(host_keys)),
        created_at TEXT NOT NULL,
        PRIMARY KEY (user, name)
    ) STRICT;

    CREATE TABLE operations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        progress TEXT NOT NULL DEFAULT '',
        error TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        CHECK ((status = 'running') = (finished_at IS NULL))
    ) STRICT;

    CREATE INDEX operations_by_created_at ON operations (created_at);
    CREATE INDEX operations_by_status ON operations (status);
    """,
    # 3: a per-environment override of the host's snapshot retention policy (tier -> count).
    """
    ALTER TABLE environments ADD COLUMN snapshot_policy TEXT
        CHECK (snapshot_policy IS NULL OR json_valid(snapshot_policy));
    """,
    # 4: each environment's egress policy: 'open', 'none' or 'allow:CIDR,CIDR' (model/egress.py).
    """
    ALTER TABLE environments ADD COLUMN egress TEXT NOT NULL DEFAULT 'open'
        CHECK (egress IN ('open', 'none') OR egress LIKE 'allow:_%');
    """,
    # 5: published routes (model/routes.py). An endpoint (a host port, or scheme + domain + path)
    # belongs to one environment at most; removing the environment removes its routes.
    """
    CREATE TABLE routes (
        user TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        endpoint TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (user, name, spec),
        FOREIGN KEY (user, name) REFERENCES environments (user, name) ON DELETE CASCADE
    ) STRICT;
    """,
)


class Unset(enum.Enum):
    """The type of UNSET: a keyword argument that was left out, unlike an explicit None."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _time_text(moment: datetime) -> str:
    # One fixed format, so that text order is time order in ORDER BY.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (trigger bodies hold ';' too)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip().strip(";").strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip().strip(";").strip():
        raise Invalid(f"The migration ends with an incomplete SQL statement: {pending.strip()!r}.")
    return statements


def _changes(**values: object) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not UNSET}


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
    )


def _user_row(user: UserRecord) -> dict[str, object]:
    row = dataclasses.asdict(user)
    row["created_at"] = _time_text(user.created_at)
    return row


def _key(row: sqlite3.Row) -> SshKeyRecord:
    return SshKeyRecord(
        user=row["user"],
        fingerprint=row["fingerprint"],
        public_key=row["public_key"],
        comment=row["comment"],
        added_at=datetime.fromisoformat(row["added_at"]),
    )


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
    )


def _environment_row(environment: EnvironmentRecord) -> dict[str, object]:
    host_keys = environment.host_keys
    policy = environment.snapshot_policy
    return {
        "user": environment.user,
        "name": environment.name,
        "image": environment.image,
        "profile": environment.profile,
        "cpu": environment.cpu,
        "memory_bytes": environment.memory_bytes,
        "disk_bytes": environment.disk_bytes,
        "processes": environment.processes,
        "status": environment.status,
        "state_hint": environment.state_hint,
        "address": environment.address,
        "host_keys": None if host_keys is None else json.dumps(dict(host_keys), sort_keys=True),
        "created_at": _time_text(environment.created_at),
        "snapshot_policy": None if policy is None else json.dumps(dict(policy), sort_keys=True),
    }


def _route(row: sqlite3.Row) -> RouteRecord:
    return RouteRecord(
        user=row["user"],
        name=row["name"],
        spec=row["spec"],
        endpoint=row["endpoint"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _taken(endpoint: str, user: str, owner: sqlite3.Row) -> Conflict:
    # Another tenant's environment names are theirs to know, not the caller's.
    holder = f"{owner['user']}/{owner['name']}" if owner["user"] == user else "another user"
    return Conflict(
        f"{endpoint} is already published by {holder} (as {owner['spec']}); "
        "unpublish it there first or choose another port or domain."
    )


def _operation(row: sqlite3.Row) -> OperationRecord:
    return OperationRecord(
        id=row["id"],
        kind=row["kind"],
        target=row["target"],
        status=row["status"],
        progress=row["progress"],
        error=row["error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        finished_at=_time_or_none(row["finished_at"]),
    )


def _operation_row(operation: OperationRecord) -> dict[str, object]:
    row = dataclasses.asdict(operation)
    row["created_at"] = _time_text(operation.created_at)
    row["finished_at"] = (
        None if operation.finished_at is None else _time_text(operation.finished_at)
    )
    return row


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


class Database:
    """cloche's state database: open it, migrate() it, then call its repository methods."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str] = MIGRATIONS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(path)
        self._migrations = tuple(migrations)
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Users, keys and quotas are nobody else's business: create the file private.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._connection()

    # Connections and transactions -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: the module starts no transactions of its own; ours are explicit.
        # check_same_thread=False only so close() can close every thread's connection.
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=0
        )
        try:
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MILLISECONDS}")
            connection.execute("PRAGMA foreign_keys = ON")
            (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.Error as error:
            connection.close()
            raise self._failure(error) from error
        if str(mode).lower() != "wal":
            connection.close()
            raise HostFailure(
                f"The state database {self.path} cannot use write-ahead logging (mode {mode}); "
                "put it on a local file system."
            )
        return connection

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise HostFailure(f"The state database {self.path} is closed; open it again.")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._lock:
            # Worker pools end idle threads; their connections would otherwise pile up.
            for thread in [thread for thread in self._connections if not thread.is_alive()]:
                self._connections.pop(thread).close()
            connection = self._connect()
            self._connections[threading.current_thread()] = connection
        self._local.connection = connection
        return connection

    def _failure(self, error: sqlite3.Error) -> ClocheError:
        if isinstance(error, sqlite3.IntegrityError):
            return Conflict(
                f"The change clashes with the stored state ({error}); reload and retry."
            )
        if getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return HostFailure(
                f"The state database {self.path} stayed locked for "
                f"{BUSY_TIMEOUT_MILLISECONDS // 1000} seconds; retry, and look for a stuck "
                "cloche process if it keeps happening."
            )
        return HostFailure(
            f"The state database {self.path} failed ({error}); check the disk and the file."
        )

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as error:
            raise self._failure(error) from error
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error) and not isinstance(error, sqlite3.ProgrammingError):
                raise self._failure(error) from error
            raise

    def close(self) -> None:
        """Close every thread's connection; the object cannot be used afterwards."""
        with self._lock:
            self._closed = True
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Migrations ---------------------------------------------------------------------------

    @property
    def latest_version(self) -> int:
        """The schema version this code migrates to."""
        return len(self._migrations)

    def _ensure_migrations_table(self) -> None:
        try:
            self._connection().execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT"
            )
        except sqlite3.Error as error:
            raise self._failure(error) from error

    @staticmethod
    def _version_in(connection: sqlite3.Connection) -> int:
        (version,) = connection.execute(
            "SELECT coalesce(max(version), 0) FROM schema_migrations"
        ).fetchone()
        return int(version)

    def schema_version(self) -> int:
        """The number of migrations applied to this database (0 for a new file)."""
        self._ensure_migrations_table()
        with self._transaction(write=False) as connection:
            return self._version_in(connection)

    def migrate(self, up_to: int | None = None) -> int:
        """Apply the missing migrations up to up_to (default: all), one transaction each."""
        target = self.latest_version if up_to is None else up_to
        if not 0 <= target <= self.latest_version:
            raise Invalid(
                f"Schema version {target} does not exist; pick 0 to {self.latest_version}."
            )
        self._ensure_migrations_table()
        for version in range(1, target + 1):
            with self._transaction(write=True) as connection:
                current = self._version_in(connection)
                self._refuse_newer(current)
                if current >= version:
                    continue
                for statement in _statements(self._migrations[version - 1]):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _time_text(self._clock())),
                )
        current = self.schema_version()
        self._refuse_newer(current)
        return current

    def _refuse_newer(self, version: int) -> None:
        if version > self.latest_version:
            raise HostFailure(
                f"The state database {self.path} is at schema version {version} but this "
                f"cloche knows only {self.latest_version}; upgrade cloche."
            )

    # Users --------------------------------------------------------------------------------

    @staticmethod
    def _require_user(connection: sqlite3.Connection, name: str) -> UserRecord:
        row = connection.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"There is no user named {name!r}; check the name or add the user.")
        return _user(row)

    def allocate_uid_base(
        self, size: int = DEFAULT_UID_SIZE, first: int = DEFAULT_UID_FIRST
    ) -> int:
        """The lowest free uid base at or above first (a preview: add_user allocates itself)."""
        with self._transaction(write=False) as connection:
            return _lowest_free_uid_base(connection, size, first)

    def add_user(
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
        with self._transaction(write=True) as connection:
            exists = connection.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone()
            if exists is not None:
                raise Conflict(f"User {name!r} already exists; pick another name.")
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
                created_at=self._clock(),
            )
            connection.execute(
                "INSERT INTO users (name, role, max_envs, cpu, memory_bytes, disk_bytes, "
                "processes, uid_base, uid_size, created_at) VALUES (:name, :role, :max_envs, "
                ":cpu, :memory_bytes, :disk_bytes, :processes, :uid_base, :uid_size, :created_at)",
                _user_row(user),
            )
            return user

    def get_user(self, name: str) -> UserRecord:
        """The user named name; NotFound if there is none."""
        with self._transaction(write=False) as connection:
            return self._require_user(connection, name)

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._transaction(write=False) as connection:
            rows = connection.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def update_user_quotas(
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
        with self._transaction(write=True) as connection:
            user = dataclasses.replace(
                self._require_user(connection, name),
                **_changes(
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

    def delete_user(self, name: str) -> None:
        """Delete a user and their keys, freeing their uid range; Conflict while envs remain."""
        with self._transaction(write=True) as connection:
            self._require_user(connection, name)
            (count,) = connection.execute(
                "SELECT count(*) FROM environments WHERE user = ?", (name,)
            ).fetchone()
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
        with self._transaction(write=True) as connection:
            self._require_user(connection, user)
            key = SshKeyRecord(
                user=user,
                fingerprint=fingerprint,
                public_key=public_key.strip(),
                comment=comment,
                added_at=self._clock(),
            )
            exists = connection.execute(
                "SELECT 1 FROM ssh_keys WHERE user = ? AND fingerprint = ?", (user, fingerprint)
            ).fetchone()
            if exists is not None:
                raise Conflict(f"User {user!r} already has the key {fingerprint}; nothing to add.")
            connection.execute(
                "INSERT INTO ssh_keys (user, fingerprint, public_key, comment, added_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key.user, key.fingerprint, key.public_key, key.comment, _time_text(key.added_at)),
            )
            return key

    def remove_key(self, user: str, fingerprint: str) -> None:
        """Forget one of a user's keys; NotFound if they do not have it."""
        with self._transaction(write=True) as connection:
            self._require_user(connection, user)
            deleted = connection.execute(
                "DELETE FROM ssh_keys WHERE user = ? AND fingerprint = ?", (user, fingerprint)
            ).rowcount
            if not deleted:
                raise NotFound(
                    f"User {user!r} has no key {fingerprint}; list their keys to find its "
                    "fingerprint."
                )

    def list_keys(self, user: str | None = None) -> list[SshKeyRecord]:
        """A user's keys (every user's when user is None), oldest first."""
        with self._transaction(write=False) as connection:
            if user is None:
                rows = connection.execute(
                    "SELECT * FROM ssh_keys ORDER BY user, added_at, fingerprint"
                ).fetchall()
            else:
                self._require_user(connection, user)
                rows = connection.execute(
                    "SELECT * FROM ssh_keys WHERE user = ? ORDER BY added_at, fingerprint",
                    (user,),
                ).fetchall()
        return [_key(row) for row in rows]

    # Environments -------------------------------------------------------------------------

    @staticmethod
    def _require_environment(
        connection: sqlite3.Connection, user: str, name: str
    ) -> EnvironmentRecord:
        row = connection.execute(
            "SELECT * FROM environments WHERE user = ? AND name = ?", (user, name)
        ).fetchone()
        if row is None:
            raise NotFound(f"User {user!r} has no environment named {name!r}; check the name.")
        return _environment(row)

    @staticmethod
    def _refuse_taken_address(
        connection: sqlite3.Connection, environment: EnvironmentRecord
    ) -> None:
        if environment.address is None:
            return
        row = connection.execute(
            "SELECT user, name FROM environments WHERE address = ? AND NOT (user = ? AND name = ?)",
            (environment.address, environment.user, environment.name),
        ).fetchone()
        if row is not None:
            raise Conflict(
                f"Address {environment.address} already belongs to {row['user']}/{row['name']}; "
                "pick a free address."
            )

    def add_environment(
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
    ) -> EnvironmentRecord:
        """Record a new environment; QuotaExceeded at max_envs, checked in the same transaction."""
        with self._transaction(write=True) as connection:
            owner = self._require_user(connection, user)
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
                created_at=self._clock(),
                snapshot_policy=None if snapshot_policy is None else dict(snapshot_policy),
            )
            exists = connection.execute(
                "SELECT 1 FROM environments WHERE user = ? AND name = ?", (user, name)
            ).fetchone()
            if exists is not None:
                raise Conflict(
                    f"User {user!r} already has an environment named {name!r}; pick another name."
                )
            (count,) = connection.execute(
                "SELECT count(*) FROM environments WHERE user = ?", (user,)
            ).fetchone()
            if count >= owner.max_envs:
                raise QuotaExceeded(
                    f"User {user!r} already has {count} of their {owner.max_envs} environments; "
                    "delete one or ask an admin to raise max_envs."
                )
            self._refuse_taken_address(connection, environment)
            connection.execute(
                "INSERT INTO environments (user, name, image, profile, cpu, memory_bytes, "
                "disk_bytes, processes, status, state_hint, address, host_keys, created_at, "
                "snapshot_policy) VALUES (:user, :name, :image, :profile, :cpu, :memory_bytes, "
                ":disk_bytes, :processes, :status, :state_hint, :address, :host_keys, "
                ":created_at, :snapshot_policy)",
                _environment_row(environment),
            )
            return environment

    def get_environment(self, user: str, name: str) -> EnvironmentRecord:
        """The environment user/name; NotFound if there is none."""
        with self._transaction(write=False) as connection:
            return self._require_environment(connection, user, name)

    def list_environments(self, user: str | None = None) -> list[EnvironmentRecord]:
        """A user's environments (everyone's when user is None), by user then name."""
        with self._transaction(write=False) as connection:
            if user is None:
                rows = connection.execute(
                    "SELECT * FROM environments ORDER BY user, name"
                ).fetchall()
            else:
                self._require_user(connection, user)
                rows = connection.execute(
                    "SELECT * FROM environments WHERE user = ? ORDER BY name", (user,)
                ).fetchall()
        return [_environment(row) for row in rows]

    def count_environments(self, user: str) -> int:
        """How many environments the user has, in any status."""
        with self._transaction(write=False) as connection:
            (count,) = connection.execute(
                "SELECT count(*) FROM environments WHERE user = ?", (user,)
            ).fetchone()
        return int(count)

    def update_environment(
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
    ) -> EnvironmentRecord:
        """Change the fields given (None clears a nullable one); return the updated record."""
        if isinstance(host_keys, Mapping):
            host_keys = dict(host_keys)
        if isinstance(snapshot_policy, Mapping):
            snapshot_policy = dict(snapshot_policy)
        with self._transaction(write=True) as connection:
            environment = dataclasses.replace(
                self._require_environment(connection, user, name),
                **_changes(
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
                ),
            )
            self._refuse_taken_address(connection, environment)
            connection.execute(
                "UPDATE environments SET image = :image, profile = :profile, cpu = :cpu, "
                "memory_bytes = :memory_bytes, disk_bytes = :disk_bytes, "
                "processes = :processes, status = :status, state_hint = :state_hint, "
                "address = :address, host_keys = :host_keys, "
                "snapshot_policy = :snapshot_policy "
                "WHERE user = :user AND name = :name",
                _environment_row(environment),
            )
            return environment

    def get_egress(self, user: str, name: str) -> str:
        """The stored egress policy of user/name ('open', 'none' or 'allow:...'); NotFound."""
        with self._transaction(write=False) as connection:
            self._require_environment(connection, user, name)
            (egress,) = connection.execute(
                "SELECT egress FROM environments WHERE user = ? AND name = ?", (user, name)
            ).fetchone()
        return str(egress)

    def set_egress(self, user: str, name: str, egress: str) -> None:
        """Store the (already checked) egress policy of user/name; NotFound if there is none."""
        with self._transaction(write=True) as connection:
            self._require_environment(connection, user, name)
            connection.execute(
                "UPDATE environments SET egress = ? WHERE user = ? AND name = ?",
                (egress, user, name),
            )

    def list_egress(self) -> dict[tuple[str, str], str]:
        """Every environment's stored egress policy, by (user, name)."""
        with self._transaction(write=False) as connection:
            rows = connection.execute("SELECT user, name, egress FROM environments").fetchall()
        return {(row["user"], row["name"]): str(row["egress"]) for row in rows}

    def delete_environment(self, user: str, name: str) -> None:
        """Forget the environment user/name; NotFound if there is none."""
        with self._transaction(write=True) as connection:
            self._require_environment(connection, user, name)
            connection.execute("DELETE FROM environments WHERE user = ? AND name = ?", (user, name))

    # Routes -------------------------------------------------------------------------------

    def add_route(self, user: str, name: str, spec: str, endpoint: str) -> RouteRecord:
        """Store a published route; Conflict when its endpoint is taken, NotFound without env."""
        route = RouteRecord(
            user=user, name=name, spec=spec, endpoint=endpoint, created_at=_utc_now()
        )
        with self._transaction(write=True) as connection:
            self._require_environment(connection, user, name)
            owner = connection.execute(
                "SELECT user, name, spec FROM routes WHERE endpoint = ?", (endpoint,)
            ).fetchone()
            if owner is not None:
                raise _taken(endpoint, user, owner)
            connection.execute(
                "INSERT INTO routes (user, name, spec, endpoint, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (user, name, spec, endpoint, _time_text(route.created_at)),
            )
        return route

    def remove_route(self, user: str, name: str, spec: str) -> RouteRecord:
        """Forget one route of user/name; NotFound when it is not published there."""
        with self._transaction(write=True) as connection:
            row = connection.execute(
                "SELECT * FROM routes WHERE user = ? AND name = ? AND spec = ?", (user, name, spec)
            ).fetchone()
            if row is None:
                raise NotFound(
                    f"{spec} is not published by {user}/{name}; "
                    f"'cloche routes {user}/{name}' lists what is."
                )
            connection.execute(
                "DELETE FROM routes WHERE user = ? AND name = ? AND spec = ?", (user, name, spec)
            )
        return _route(row)

    def list_routes(self, user: str | None = None, name: str | None = None) -> list[RouteRecord]:
        """Published routes, of one user or one environment when given, in a stable order."""
        query, parameters = "SELECT * FROM routes", []
        if user is not None:
            query += " WHERE user = ?"
            parameters.append(user)
            if name is not None:
                query += " AND name = ?"
                parameters.append(name)
        with self._transaction(write=False) as connection:
            rows = connection.execute(query + " ORDER BY user, name, spec", parameters).fetchall()
        return [_route(row) for row in rows]

    # Operations ---------------------------------------------------------------------------

    @staticmethod
    def _require_operation(connection: sqlite3.Connection, operation_id: str) -> OperationRecord:
        row = connection.execute(
            "SELECT * FROM operations WHERE id = ?", (operation_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"There is no operation {operation_id!r}; check the id.")
        return _operation(row)

    def create_operation(self, kind: str, target: str, progress: str = "") -> OperationRecord:
        """Start tracking a running operation under a new random id."""
        operation = OperationRecord(
            id=str(uuid.uuid4()),
            kind=kind,
            target=target,
            status="running",
            progress=progress,
            error=None,
            created_at=self._clock(),
            finished_at=None,
        )
        with self._transaction(write=True) as connection:
            connection.execute(
                "INSERT INTO operations (id, kind, target, status, progress, error, created_at, "
                "finished_at) VALUES (:id, :kind, :target, :status, :progress, :error, "
                ":created_at, :finished_at)",
                _operation_row(operation),
            )
        return operation

    def update_operation(
        self,
        operation_id: str,
        *,
        status: OperationStatus | Unset = UNSET,
        progress: str | Unset = UNSET,
        error: str | Unset | None = UNSET,
    ) -> OperationRecord:
        """Report progress or the end of an operation; Conflict once it has finished."""
        with self._transaction(write=True) as connection:
            operation = self._require_operation(connection, operation_id)
            if operation.finished:
                raise Conflict(
                    f"Operation {operation_id} already {operation.status}; start a new one."
                )
            operation = dataclasses.replace(
                operation, **_changes(status=status, progress=progress, error=error)
            )
            if operation.finished:
                operation = dataclasses.replace(operation, finished_at=self._clock())
            connection.execute(
                "UPDATE operations SET status = :status, progress = :progress, error = :error, "
                "finished_at = :finished_at WHERE id = :id",
                _operation_row(operation),
            )
            return operation

    def get_operation(self, operation_id: str) -> OperationRecord:
        """The operation with this id; NotFound if there is none."""
        with self._transaction(write=False) as connection:
            return self._require_operation(connection, operation_id)

    def list_operations(
        self,
        *,
        status: OperationStatus | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> list[OperationRecord]:
        """Operations, newest first, optionally only those with this status or target."""
        with self._transaction(write=False) as connection:
            rows = connection.execute(
                "SELECT * FROM operations WHERE (:status IS NULL OR status = :status) "
                "AND (:target IS NULL OR target = :target) "
                "ORDER BY created_at DESC, rowid DESC LIMIT :limit",
                {"status": status, "target": target, "limit": -1 if limit is None else limit},
            ).fetchall()
        return [_operation(row) for row in rows]

    def fail_unfinished_operations(self, error: str) -> int:
        """Mark every running operation failed (a restarted daemon lost them); return how many."""
        with self._transaction(write=True) as connection:
            return connection.execute(
                "UPDATE operations SET status = 'failed', error = ?, finished_at = ? "
                "WHERE status = 'running'",
                (error, _time_text(self._clock())),
            ).rowcount
