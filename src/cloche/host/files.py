"""Atomic, durable file writes, with the previous content kept for rollback."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def read_text_or_none(path: Path) -> str | None:
    """Return the file's text, or None when it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def ensure_private_directory(path: Path, mode: int = 0o700) -> bool:
    """path is a directory of mode (0700: owner only), made or tightened; True if it changed."""
    # mkdir's mode passes through the umask and never touches an existing directory, so a
    # directory someone else (or an older cloche) made 0755 stays readable unless chmod-ed.
    try:
        path.mkdir(mode=mode, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise
    else:
        os.chmod(path, mode)
        return True
    if path.stat().st_mode & 0o7777 == mode:
        return False
    os.chmod(path, mode)
    return True


def write_atomically(
    path: Path, content: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> None:
    """Write content to path so that readers see either the old or the new file, never half.

    Durable too: the file is synced before the rename and its directory after, so a power cut
    leaves the old file or the new one, not an empty one. owner is (uid, gid), set before the
    rename so no reader ever sees the file with the wrong owner.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if owner is not None:
            os.chown(temporary, *owner)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def restore(path: Path, previous: str | None) -> None:
    """Put back what read_text_or_none returned before a change (None removes the file)."""
    if previous is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        write_atomically(path, previous)
