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


def _is_session_of(
    proc: Path, uid: int, commands: frozenset[str] | None = SESSION_COMMANDS
) -> bool:
    # The real uid from status: sshd makes its processes non-dumpable, which hands their
    # /proc directories to root.
    try:
        comm = (proc / "comm").read_text().strip()
        owner = _live_uid((proc / "status").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False
    return owner == uid and (commands is None or comm in commands)


def session_pids(
    uid: int, proc_root: Path = Path("/proc"), commands: frozenset[str] | None = SESSION_COMMANDS
) -> list[int]:
    """The sshd session processes running as uid (every process of uid when commands is None)."""
    return sorted(
        int(entry.name)
        for entry in proc_root.iterdir()
        if entry.name.isdigit() and _is_session_of(entry, uid, commands)
    )


def _held(pid: int, uid: int, commands: frozenset[str] | None = SESSION_COMMANDS) -> int | None:
    """A pidfd for pid, opened before the check, so the check and the signal hit one process."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as error:
        # Never a silent skip: a session cloche could not hold would keep its old access.
        raise HostFailure(
            f"Could not hold process {pid} to end it ({error.strerror}); cloche needs Linux 5.3 "
            "or later (pidfd_open). End the account's sessions by hand (ps -u ACCOUNT)."
        ) from None
    if _is_session_of(Path(f"/proc/{pid}"), uid, commands):
        return descriptor
    os.close(descriptor)
    return None


def _signal(descriptor: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(descriptor, number)


def _wait_exited(descriptors: list[int], seconds: float) -> list[int]:
    """Wait until the processes exit (a pidfd turns readable); return those still running."""
    deadline = time.monotonic() + seconds
    waiting = set(descriptors)
    # poll, not select: an account may hold more sessions than select's 1024 descriptors.
    poller = select.poll()
    for descriptor in waiting:
        poller.register(descriptor, select.POLLIN)
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for descriptor, _ in poller.poll(remaining * 1000):
            waiting.discard(descriptor)
            poller.unregister(descriptor)
    return [descriptor for descriptor in descriptors if descriptor in waiting]


def _sweep(uid: int, proc_root: Path) -> set[int]:
    """TERM every session of uid, KILL those still running after the grace; their pids."""
    held: dict[int, int] = {}
    try:
        for pid in session_pids(uid, proc_root):
            descriptor = _held(pid, uid)
            if descriptor is not None:
                held[pid] = descriptor
        for descriptor in held.values():
            _signal(descriptor, signal.SIGTERM)
        stubborn = _wait_exited(list(held.values()), GRACE_SECONDS)
        for descriptor in stubborn:
            _signal(descriptor, signal.SIGKILL)
        _wait_exited(stubborn, GRACE_SECONDS)
    finally:
        for descriptor in held.values():
            os.close(descriptor)
    return set(held)


def end_sessions(uid: int, proc_root: Path = Path("/proc")) -> int:
    """End every sshd session running as uid (TERM, then KILL); return how many there were."""
    if uid == 0:
        raise HostFailure("cloche ends the sessions of jump accounts only, never root's.")
    pids = _sweep(uid, proc_root)
    time.sleep(SECOND_SWEEP_AFTER_SECONDS)
    ended = len(pids | _sweep(uid, proc_root))
    if ended:
        log.info("ended %d sshd session(s) of uid %d", ended, uid)
    return ended


def kill_processes(uid: int, proc_root: Path = Path("/proc")) -> int:
    """KILL every process running as uid (an account being removed); return how many."""
    if uid == 0:
        raise HostFailure("cloche kills the processes of jump accounts only, never root's.")
    killed = 0
    for pid in session_pids(uid, proc_root, commands=None):
        descriptor = _held(pid, uid, commands=None)
        if descriptor is None:
            continue
        try:
            _signal(descriptor, signal.SIGKILL)
            killed += 1
        finally:
            os.close(descriptor)
    return killed
