"""What cloche remembers of the backups it made: restic's summary (size added, duration).

restic's repositories are the truth about which backups exist (restic 0.14 keeps no summary in
a snapshot); this small SQLite file beside the state database keeps the figures restic printed
when each backup was made. It is a cache: losing it loses only the 'added' column.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cloche.model.errors import HostFailure

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
    repository TEXT NOT NULL,
    id TEXT NOT NULL,
    user TEXT NOT NULL,
    env TEXT NOT NULL,
    time TEXT NOT NULL,
    data_added INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (repository, id)
) STRICT
"""


@dataclass(frozen=True)
class BackupRecord:
    """One backup cloche made, with restic's figures."""

    repository: str
    id: str
    user: str
    env: str
    time: str
    data_added: int
    total_bytes: int
    seconds: float


class BackupCatalog:
    """The backups.db file: one row per backup, written by the daemon only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._connection() as connection:
            connection.execute(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                connection = sqlite3.connect(self.path, timeout=10)
            except sqlite3.Error as error:
                raise HostFailure(
                    f"Cannot open the backup catalog {self.path} ({error}); check the disk."
                ) from error
            try:
                with connection:
                    yield connection
            except sqlite3.Error as error:
                raise HostFailure(
                    f"The backup catalog {self.path} failed ({error}); check the disk and file."
                ) from error
            finally:
                connection.close()

    def add(self, record: BackupRecord) -> None:
        """Remember one backup."""
        with self._connection() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO backups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.repository,
                    record.id,
                    record.user,
                    record.env,
                    record.time,
                    record.data_added,
                    record.total_bytes,
                    record.seconds,
                ),
            )

    def list(self, repository: str | None = None) -> list[BackupRecord]:
        """Every remembered backup (of one repository when given), oldest first."""
        query = "SELECT * FROM backups"
        parameters: tuple[str, ...] = ()
        if repository is not None:
            query += " WHERE repository = ?"
            parameters = (repository,)
        with self._connection() as connection:
            rows = connection.execute(query + " ORDER BY time", parameters).fetchall()
        return [BackupRecord(*row) for row in rows]

    def forget(self, repository: str, keep_ids: set[str]) -> int:
        """Drop the rows of repository whose backup restic no longer has; return how many."""
        stale = [record.id for record in self.list(repository) if record.id not in keep_ids]
        with self._connection() as connection:
            connection.executemany(
                "DELETE FROM backups WHERE repository = ? AND id = ?",
                [(repository, backup_id) for backup_id in stale],
            )
        return len(stale)
