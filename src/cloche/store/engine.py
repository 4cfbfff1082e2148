"""The state database's engine: connections, transactions, the schema migrations, sqlite errors.

Threads: each thread gets its own connection (made on first use, closed by close() or once the
thread has ended), because sqlite3 connections must not be shared by threads that use them at the
same time. WAL lets readers run beside the single writer. Every writing method of the stores runs
in one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before its first read, so
check-then-write sequences (duplicate names, uid ranges, the env count quota) cannot interleave,
whether the other writer is a thread of this process or another process. Waiting for the lock is
bounded by busy_timeout.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound
from cloche.model.records import UNSET

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
    # 6: brute-force bans of the host's sshd (model/bans.py) and the recent failed connections
    # they are counted from: one row per client address and port, so a connection counts once.
    """
    CREATE TABLE bans (
        address TEXT PRIMARY KEY,
        until TEXT NOT NULL,
        failures INTEGER NOT NULL CHECK (failures >= 0),
        created TEXT NOT NULL
    ) STRICT;

    CREATE TABLE ssh_failures (
        address TEXT NOT NULL,
        port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        at TEXT NOT NULL,
        PRIMARY KEY (address, port)
    ) STRICT;

    CREATE INDEX ssh_failures_by_at ON ssh_failures (at);
    """,
    # 7: a second copy of the audit log's head (store/audit_head.py), so that deleting the log
    # and its .head file together still fails 'cloche audit verify'.
    """
    CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL CHECK (seq >= 0),
        hash TEXT NOT NULL
    ) STRICT;
    """,
    # 8: the host account a user may call the daemon's socket from (one user per account).
    """
    ALTER TABLE users ADD COLUMN host_account TEXT;
    CREATE UNIQUE INDEX users_host_account ON users (host_account) WHERE host_account IS NOT NULL;
    """,
    # 9: the widest egress a user may give their own environments (model/egress.py).
    """
    ALTER TABLE users ADD COLUMN max_egress TEXT NOT NULL DEFAULT 'open'
        CHECK (max_egress IN ('none', 'allow', 'open'));
    """,
    # 10: API tokens (model/tokens.py): the SHA-256 of each secret, never the secret itself.
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL CHECK (json_valid(scopes)),
        environments TEXT CHECK (environments IS NULL OR json_valid(environments)),
        secret_hash TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        last_used TEXT,
        revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
    ) STRICT;
    """,
)


def utc_now() -> datetime:
    """The current time in UTC (the stores' default clock)."""
    return datetime.now(UTC)


def time_text(moment: datetime) -> str:
    """A time as stored: one fixed format, so that text order is time order in ORDER BY."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def time_or_none(text: str | None) -> datetime | None:
    """A stored time, or None for NULL."""
    return None if text is None else datetime.fromisoformat(text)


def changes(**values: object) -> dict[str, Any]:
    """The keyword arguments of an update that were given (UNSET ones left out)."""
    return {key: value for key, value in values.items() if value is not UNSET}


def refuse_taken(
    connection: sqlite3.Connection,
    query: str,
    parameters: Sequence[object],
    conflict: str | Callable[[sqlite3.Row], str],
) -> None:
    """Raise Conflict when query finds a row: the name, key or address is already taken.

    conflict is the sentence, or makes it from the row that holds the taken value.
    """
    row = connection.execute(query, parameters).fetchone()
    if row is not None:
        raise Conflict(conflict if isinstance(conflict, str) else conflict(row))


def one_row(
    connection: sqlite3.Connection, query: str, parameters: Sequence[object], missing: str
) -> sqlite3.Row:
    """The one row query finds; NotFound saying missing when there is none."""
    row: sqlite3.Row | None = connection.execute(query, parameters).fetchone()
    if row is None:
        raise NotFound(missing)
    return row


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


class Engine:
    """One SQLite file: a connection per thread, transactions, and the migrations that shape it."""

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[str] = MIGRATIONS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._migrations = tuple(migrations)
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
    def transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction on this thread's connection (write=True takes the write lock first)."""
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
        """Close every thread's connection; the engine cannot be used afterwards."""
        with self._lock:
            self._closed = True
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

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
        with self.transaction(write=False) as connection:
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
            with self.transaction(write=True) as connection:
                current = self._version_in(connection)
                self._refuse_newer(current)
                if current >= version:
                    continue
                for statement in _statements(self._migrations[version - 1]):
                    connection.execute(statement)
                connection.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time_text(self.clock())),
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
