"""End the open sshd sessions of a jump account (its tunnels and ControlMaster connections).

After authentication sshd runs each connection's unprivileged half as the account; ending that
process ends the connection (its privileged monitor exits with it). Each process is held by a
pidfd before it is checked and signalled, so a pid reused by another process in between is
never hit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from pathlib import Path

from cloche.model.errors import HostFailure

log = logging.getLogger(__name__)

# OpenSSH 9.8 and later name the per-connection binary sshd-session; Debian 12's is sshd.
SESSION_COMMANDS = frozenset({"sshd", "sshd-session"})
GRACE_SECONDS = 2.0
# A connection that read the old keys file just before it changed may finish authenticating a
# moment after the first sweep: a second sweep after this pause ends it too.
SECOND_SWEEP_AFTER_SECONDS = 0.5


def _live_uid(status_text: str) -> int | None:
    """The real uid of a process that has not exited (a zombie waits for its parent only)."""
    fields = dict(line.split(":", 1) for line in status_text.splitlines() if ":" in line)
    if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
        return None
    uid = fields.get("Uid", "").split()
    return int(uid[0]) if uid else None


def _is_session_of(proc: Path, uid: int) -> bool:
    # The real uid from status: sshd makes its processes non-dumpable, which hands their
    # /proc directories to root.
    try:
        comm = (proc / "comm").read_text().strip()
        owner = _live_uid((proc / "status").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False
    return owner == uid and comm in SESSION_COMMANDS


def session_pids(uid: int, proc_root: Path = Path("/proc")) -> list[int]:
    """The sshd session processes running as uid."""
    return sorted(
        int(entry.name)
        for entry in proc_root.iterdir()
        if entry.name.isdigit() and _is_session_of(entry, uid)
    )


def _held(pid: int, uid: int) -> int | None:
    """A pidfd for pid, opened before the check, so the check and the signal hit one process."""
    try:
        descriptor = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return None
    if _is_session_of(Path(f"/proc/{pid}"), uid):
        return descriptor
    os.close(descriptor)
    return None


def _signal(descriptor: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(descriptor, number)


def _wait_exited(descriptors: list[int], seconds: float) -> list[int]:
    """Wait until the processes exit (a pidfd turns readable); return those still running."""
    deadline = time.monotonic() + seconds
    waiting = list(descriptors)
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select(waiting, [], [], remaining)
        waiting = [descriptor for descriptor in waiting if descriptor not in ready]
    return waiting


def _sweep(uid: int, proc_root: Path) -> int:
    held = [
        fd for fd in (_held(pid, uid) for pid in session_pids(uid, proc_root)) if fd is not None
    ]
    try:
        for descriptor in held:
            _signal(descriptor, signal.SIGTERM)
        for descriptor in _wait_exited(held, GRACE_SECONDS):
            _signal(descriptor, signal.SIGKILL)
    finally:
        for descriptor in held:
            os.close(descriptor)
    return len(held)


def end_sessions(uid: int, proc_root: Path = Path("/proc")) -> int:
    """End every sshd session running as uid (TERM, then KILL); return how many there were."""
    if uid == 0:
        raise HostFailure("cloche ends the sessions of jump accounts only, never root's.")
    ended = _sweep(uid, proc_root)
    time.sleep(SECOND_SWEEP_AFTER_SECONDS)
    ended += _sweep(uid, proc_root)
    if ended:
        log.info("ended %d sshd session(s) of uid %d", ended, uid)
    return ended
