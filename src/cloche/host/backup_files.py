"""The files of backups under the state directory: restore tarballs and the schedule's stamp."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cloche.model.backups import RESTORE_DIRECTORY, SCHEDULE_STAMP, backups_dir

RESTORE_SUFFIX = ".tar"


def _private_dir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.mkdir(exist_ok=True, mode=0o700)
    return path


class HostBackupFiles:
    """Restore files in STATE/backups/restore and the stamp STATE/backups/last-scheduled-backup."""

    @contextlib.contextmanager
    def restore_file(self, state_dir: Path, prefix: str) -> Iterator[Path]:
        """A new empty private file for a backup's tarball, removed when the block ends."""
        scratch = _private_dir(backups_dir(state_dir) / RESTORE_DIRECTORY)
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=RESTORE_SUFFIX, dir=scratch)
        os.close(handle)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def open_archive(self, path: Path) -> Iterator[IO[bytes]]:
        """A restore file, open for reading."""
        with path.open("rb") as stream:
            yield stream

    def drop_restore_files(self, state_dir: Path) -> int:
        """Remove the restore files a stopped daemon left; return how many."""
        scratch = backups_dir(state_dir) / RESTORE_DIRECTORY
        if not scratch.is_dir():
            return 0
        leftovers = list(scratch.glob(f"*{RESTORE_SUFFIX}"))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        return len(leftovers)

    def local_repository_exists(self, url: str) -> bool:
        """True when a local repository has been initialised at url (its config is there)."""
        return (Path(url) / "config").exists()

    def last_round(self, state_dir: Path) -> float | None:
        """When the last scheduled round was stamped (the stamp's mtime), or None."""
        try:
            return (backups_dir(state_dir) / SCHEDULE_STAMP).stat().st_mtime
        except FileNotFoundError:
            return None

    def stamp_round(self, state_dir: Path, at: float) -> None:
        """Stamp a scheduled round at the time at (the stamp's mtime)."""
        stamp = _private_dir(backups_dir(state_dir)) / SCHEDULE_STAMP
        stamp.touch()
        os.utime(stamp, (at, at))
