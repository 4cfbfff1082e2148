"""The backups' ports: restic, repository secrets, the catalog, restore files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Protocol

from cloche.model.backups import RESTIC_TIMEOUT_SECONDS, BackupRecord, Repository
from cloche.model.process import Completed


class Restic(Protocol):
    """restic against one repository; its URL, password and keys go in restic's environment.

    With check (always for a stream), a failure raises one sentence naming the repository:
    Invalid for a wrong password, NotFound for a missing repository, HostFailure otherwise.
    """

    def run(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        *,
        doing: str,
        timeout: float = RESTIC_TIMEOUT_SECONDS,
        check: bool = True,
    ) -> Completed:
        """Run 'restic ARGUMENTS' with its output captured."""

    def run_with_stdin(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        chunks: Iterable[bytes],
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' reading chunks on its stdin (a backup)."""

    def run_to_file(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        path: Path,
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' with its stdout written to path (a dump)."""


class Secrets(Protocol):
    """The root-only file of backup repositories and their passwords and keys."""

    def load_repositories(self, state_dir: Path) -> dict[str, Repository]:
        """Every repository by name ({} before the first is added)."""

    def save_repository(self, state_dir: Path, repository: Repository) -> bool:
        """Add or replace a repository; False when it was already stored exactly so."""

    def remove_repository(self, state_dir: Path, name: str) -> bool:
        """Forget a repository's entry; False when there was none."""

    def new_password(self) -> str:
        """A generated repository password."""


class BackupCatalog(Protocol):
    """The figures restic printed for each backup cloche made (restic's snapshots lack them)."""

    def add(self, state_dir: Path, record: BackupRecord) -> None:
        """Remember one backup."""

    def list(self, state_dir: Path, repository: str | None = None) -> list[BackupRecord]:
        """Every remembered backup (of one repository when given), oldest first."""

    def forget(self, state_dir: Path, repository: str, keep_ids: set[str]) -> int:
        """Drop the backups of repository whose id is not in keep_ids; return how many."""


class BackupFiles(Protocol):
    """The files of backups under the state directory: restore files and the schedule's stamp."""

    def restore_file(self, state_dir: Path, prefix: str) -> AbstractContextManager[Path]:
        """A new empty private file for a backup's tarball, removed when the block ends."""

    def open_archive(self, path: Path) -> AbstractContextManager[IO[bytes]]:
        """A restore file, open for reading."""

    def drop_restore_files(self, state_dir: Path) -> int:
        """Remove the restore files a stopped daemon left; return how many."""

    def local_repository_exists(self, url: str) -> bool:
        """True when a local repository has been initialised at url (its config is there)."""

    def last_round(self, state_dir: Path) -> float | None:
        """When the last scheduled round was stamped (seconds since the epoch), or None."""

    def stamp_round(self, state_dir: Path, at: float) -> None:
        """Stamp a scheduled round at the time at."""
