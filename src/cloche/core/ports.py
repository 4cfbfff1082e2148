"""The ports: every effect a use case has on the world, as a typed Protocol.

Use cases in core/ reach LXD, the host and the state store only through these. The adapters
live in host/, runtime/ and store/; core/context.py is the one core module that wires them
(unit tests wire fakes instead). The values that cross a port are model/ types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Protocol

from cloche.model.backups import RESTIC_TIMEOUT_SECONDS, BackupRecord, Repository
from cloche.model.process import Completed

# --- state store (store/) -------------------------------------------------------------------


# --- LXD instances and projects (runtime/) --------------------------------------------------


# --- backups: restic, secrets, exports, the catalog ------------------------------------------


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


class InstanceArchives(Protocol):
    """One project's backup snapshots, exports and imports (the methods of runtime's LxdExports).

    Until the runtime section's export port lands; the lead reconciles the two.
    """

    def create_snapshot(self, name: str, snapshot: str) -> None:
        """Take a stateless snapshot of an instance."""

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        """Delete a snapshot (no error when it is already gone)."""

    def export(self, name: str, backup: str) -> AbstractContextManager[Iterator[bytes]]:
        """An uncompressed export of the instance alone, as a stream of chunks."""

    def import_backup(self, name: str, tarball: Path, pool: str) -> None:
        """Create the instance name (stopped) from an exported tarball."""

    def reconfigure_import(
        self, name: str, eth0: dict[str, str], *, forget_mac: bool, new_identity: bool
    ) -> None:
        """Give an imported instance its eth0; a clone also a new MAC and machine identity."""


# --- images --------------------------------------------------------------------------------


# --- host: firewall, proxy, sshd and jump accounts, packages, kernel, logs, ports, clock ----
