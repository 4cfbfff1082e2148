"""The audit log on disk: append-only, hash-chained JSON lines (see cloche.model.audit).

Beside the log, `<log>.head` records the sequence number and hash of the last line written, so
that `verify()` notices lines removed from the end; a second copy in another file (the state
database, see store/audit_head.py) notices the log and its .head file deleted together. Appends
hold an exclusive `flock` on the log (shared by every process and thread that appends), readers
a shared one while they look at the file's size; the log and its head are created with mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple, Protocol

from cloche.model.audit import (
    GENESIS,
    AuditEvent,
    ChainHead,
    VerifyResult,
    decode_line,
    encode_line,
    verify_lines,
)
from cloche.model.errors import HostFailure, Invalid

FILE_MODE: Final = 0o600
_CHUNK_BYTES: Final = 64 * 1024


def _tail_start(fd: int, size: int, count: int) -> int:
    """The offset where the last `count` complete lines before `size` start (0: none)."""
    # Everything after the last newline is a line still being written; it is not counted.
    newlines_wanted = count + 1
    end = size
    while end > 0:
        start = max(0, end - _CHUNK_BYTES)
        chunk = os.pread(fd, end - start, start)
        position = len(chunk)
        while True:
            position = chunk.rfind(b"\n", 0, position)
            if position < 0:
                break
            newlines_wanted -= 1
            if newlines_wanted == 0:
                return start + position + 1
        end = start
    return 0


def _complete_end(fd: int, size: int) -> int:
    """The offset just after the last newline before size."""
    return _tail_start(fd, size, 0)


def _read_range(fd: int, start: int, end: int) -> bytes:
    parts = []
    while start < end:
        chunk = os.pread(fd, min(_CHUNK_BYTES, end - start), start)
        if not chunk:
            break
        parts.append(chunk)
        start += len(chunk)
    return b"".join(parts)


class _Snapshot(NamedTuple):
    fd: int
    size: int
    head: ChainHead | None


# Writes a whole file atomically and durably: host/files.py's write_atomically, which
# core/context.py hands in (the store layer may import only model/).
WriteFile = Callable[[Path, str, int], None]


class HeadCopy(Protocol):
    """A second record of the head, kept where deleting the log's directory entries misses it."""

    def read(self) -> ChainHead | None:
        """The head last recorded, or None."""
        ...

    def write(self, head: ChainHead) -> None:
        """Record head."""
        ...


def _later(first: ChainHead | None, second: ChainHead | None) -> ChainHead | None:
    if first is None or (second is not None and second.sequence > first.sequence):
        return second
    return first


class AuditLog:
    """One audit log file: append events, read the last ones, follow new ones, verify the chain."""

    def __init__(
        self, path: Path, write_file: WriteFile, head_copy: HeadCopy | None = None
    ) -> None:
        self.path = Path(path)
        self._write_file = write_file
        self._head_copy = head_copy
        self.head_path = self.path.with_name(self.path.name + ".head")
        # flock already excludes other open files, threads included; this lock only spares
        # threads of one process a trip through the kernel to find that out.
        self._lock = threading.Lock()

    # Writing ------------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> None:
        """Add event after the last line, durably (fsync), under an exclusive flock."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            try:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE
                )
            except OSError as error:
                raise self._failure("cannot be opened", error) from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._append_locked(fd, event)
            finally:
                os.close(fd)  # also releases the flock

    def _append_locked(self, fd: int, event: AuditEvent) -> None:
        status = os.fstat(fd)
        if status.st_mode & 0o777 != FILE_MODE and status.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
        size = status.st_size
        last = self._last_line_head(fd, size)
        recorded = self._read_head()
        # If lines were cut from the end, keep numbering after the head: the gap stays in
        # the log as evidence instead of being papered over by the next append.
        sequence = max(last.sequence, recorded.sequence if recorded else 0) + 1
        line, new_hash = encode_line(event, last.hash, sequence)
        data = (line + "\n").encode("ascii")
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as error:
            # Never leave half a line behind: it would block every later append.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise self._failure("could not be written", error) from error
        self._write_head(ChainHead(sequence, new_hash))

    def _last_line_head(self, fd: int, size: int) -> ChainHead:
        if size == 0:
            return GENESIS
        if os.pread(fd, 1, size - 1) != b"\n":
            raise HostFailure(
                f"The audit log {self.path} ends in an unfinished line; run 'cloche audit "
                "verify', then start a new log as docs/operations.md says (The audit log)."
            )
        start = _tail_start(fd, size, 1)
        try:
            _, head = decode_line(_read_range(fd, start, size).decode("ascii"))
        except (Invalid, UnicodeDecodeError):
            raise HostFailure(
                f"The last line of the audit log {self.path} is damaged; run 'cloche audit "
                "verify', then start a new log as docs/operations.md says (The audit log)."
            ) from None
        return head

    def _read_head_file(self) -> ChainHead | None:
        try:
            fields = json.loads(self.head_path.read_text())
            head = ChainHead(int(fields["seq"]), str(fields["hash"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return head

    def _read_head(self) -> ChainHead | None:
        """The later of the .head file and its copy: what was written, whichever survived."""
        copy = self._head_copy.read() if self._head_copy is not None else None
        return _later(self._read_head_file(), copy)

    def _write_head(self, head: ChainHead) -> None:
        text = json.dumps({"hash": head.hash, "seq": head.sequence}, sort_keys=True) + "\n"
        try:
            self._write_file(self.head_path, text, FILE_MODE)
        except OSError as error:
            raise self._failure("head could not be recorded", error) from error
        if self._head_copy is not None:
            self._head_copy.write(head)

    def _failure(self, what: str, error: OSError) -> HostFailure:
        return HostFailure(
            f"The audit log {self.path} {what} ({error.strerror or error}); check the disk "
            "and the permissions of its directory."
        )

    # Reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[_Snapshot | None]:
        """The open log, its size and its head as of one moment, or None when there is no log."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield None
            return
        except OSError as error:
            raise self._failure("cannot be read", error) from error
        try:
            # Appends change the log and its head under the exclusive lock; reading both under
            # the shared one sees them agree. Reading the lines themselves needs no lock:
            # bytes before this size never change.
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                snapshot = _Snapshot(fd, os.fstat(fd).st_size, self._read_head())
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            yield snapshot
        finally:
            os.close(fd)

    def _decode(self, raw: bytes) -> AuditEvent:
        try:
            event, _ = decode_line(raw.decode("ascii"))
        except (Invalid, UnicodeDecodeError):
            raise HostFailure(
                f"The audit log {self.path} holds a damaged line; run 'cloche audit verify' "
                "to find it."
            ) from None
        return event

    def read(self, limit: int | None = None) -> list[AuditEvent]:
        """The last `limit` events (all of them when limit is None), oldest first."""
        if limit is not None and limit <= 0:
            return []
        with self._snapshot() as snapshot:
            if snapshot is None:
                return []
            fd, size, _ = snapshot
            end = _complete_end(fd, size)
            start = 0 if limit is None else _tail_start(fd, end, limit)
            data = _read_range(fd, start, end)
        return [self._decode(raw) for raw in data.split(b"\n")[:-1]]

    def follow(
        self, *, last: int = 0, poll_seconds: float = 0.5
    ) -> Generator[AuditEvent, None, None]:
        """Yield the last `last` events, then every event appended later, polling; never ends."""
        stream: BinaryIO | None = None
        pending = b""
        # Only the first file starts near its end; one that appears or replaces it later is
        # all new, so it is read from its beginning.
        start: int | None = last
        try:
            while True:
                if stream is None:
                    stream = self._open_for_follow(start)
                    start = None
                    pending = b""
                    if stream is None:
                        time.sleep(poll_seconds)
                        continue
                chunk = stream.read()
                if chunk:
                    *complete, pending = (pending + chunk).split(b"\n")
                    for raw in complete:
                        yield self._decode(raw)
                elif self._replaced(stream):
                    stream.close()
                    stream = None
                else:
                    time.sleep(poll_seconds)
        finally:
            if stream is not None:
                stream.close()

    def _open_for_follow(self, last: int | None) -> BinaryIO | None:
        """The log opened where following starts (None: from its beginning), or None if absent."""
        try:
            stream = self.path.open("rb")
        except FileNotFoundError:
            return None
        if last is not None:
            fd = stream.fileno()
            end = _complete_end(fd, os.fstat(fd).st_size)
            stream.seek(_tail_start(fd, end, last) if last > 0 else end)
        return stream

    def _replaced(self, stream: BinaryIO) -> bool:
        """True when the path now names another file, or this one shrank (rotated or cut)."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return True
        opened = os.fstat(stream.fileno())
        return (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino) or (
            opened.st_size < stream.tell()
        )

    # Verifying ----------------------------------------------------------------------------

    def verify(self) -> VerifyResult:
        """Check the whole chain, and that no lines were cut from its end (see model.audit)."""
        with self._snapshot() as snapshot:
            if snapshot is None:
                head = self._read_head()
                if head is not None and head.sequence > 0:
                    return VerifyResult(
                        False,
                        0,
                        1,
                        f"the log {self.path} is missing but {head.sequence} events were "
                        "written to it; restore it from a backup.",
                    )
                return VerifyResult(True, 0, None, "0 events verified (the log is empty).")
            fd, size, head = snapshot
            result = verify_lines(self._lines(fd, size), head)
        if result.ok and result.count > 0 and head is None:
            return VerifyResult(
                False,
                result.count,
                None,
                f"the head file {self.head_path} is missing or damaged, so lines cut from the "
                "end of the log would go unnoticed.",
            )
        return result

    @staticmethod
    def _lines(fd: int, size: int) -> Iterator[str]:
        offset = 0
        pending = b""
        while offset < size:
            chunk = os.pread(fd, min(_CHUNK_BYTES, size - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                # A changed byte that is no longer text must still fail, not crash, the check.
                yield raw.decode("utf-8", errors="replace")
        if pending:
            yield pending.decode("utf-8", errors="replace")
