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
from pathlib import Path

from cloche.model.backups import CATALOG_FILE, BackupRecord, backups_dir
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


class BackupCatalogFile:
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


class SqliteBackupCatalog:
    """The catalog of each state directory, its file opened once (per adapter) and kept."""

    def __init__(self) -> None:
        self._files: dict[Path, BackupCatalogFile] = {}
        self._lock = threading.Lock()

    def _file(self, state_dir: Path) -> BackupCatalogFile:
        with self._lock:
            if state_dir not in self._files:
                self._files[state_dir] = BackupCatalogFile(backups_dir(state_dir) / CATALOG_FILE)
            return self._files[state_dir]

    def add(self, state_dir: Path, record: BackupRecord) -> None:
        """Remember one backup."""
        self._file(state_dir).add(record)

    def list(self, state_dir: Path, repository: str | None = None) -> list[BackupRecord]:
        """Every remembered backup (of one repository when given), oldest first."""
        return self._file(state_dir).list(repository)

    def forget(self, state_dir: Path, repository: str, keep_ids: set[str]) -> int:
        """Drop the rows of repository whose backup restic no longer has; return how many."""
        return self._file(state_dir).forget(repository, keep_ids)
