"""Ending a jump account's sshd sessions: only its sshd processes, held by pidfd, TERM then KILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.host import jump_sessions
from cloche.model.errors import HostFailure

# As root the processes run as nobody (root's own sessions are never ended); else as this uid.
UID = 65534 if os.getuid() == 0 else os.getuid()


@pytest.fixture
def bin_dir() -> Iterator[Path]:
    """A directory the test's processes (maybe nobody) can run programs from."""
    directory = Path(tempfile.mkdtemp(prefix="cloche-sessions-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """A /proc that lists only the processes a test links into it (never the host's sshd)."""
    root = tmp_path / "proc"
    root.mkdir()
    return root


def _spawn(
    bin_dir: Path, proc_root: Path, comm: str, *, ignore_term: bool = False
) -> subprocess.Popen[bytes]:
    """A process of UID whose comm is comm (a copy of sh under that name), listed in proc_root."""
    binary = bin_dir / comm
    shutil.copy(shutil.which("sh") or "/bin/sh", binary)
    binary.chmod(0o755)
    script = "trap '' TERM; while :; do sleep 0.05; done" if ignore_term else "sleep 60"
    user = UID if os.getuid() == 0 else None
    process = subprocess.Popen([str(binary), "-c", script], user=user)
    (proc_root / str(process.pid)).symlink_to(f"/proc/{process.pid}")
    for _ in range(10_000):
        if Path(f"/proc/{process.pid}/comm").read_text().strip() == comm:
            return process
    raise AssertionError(f"process {process.pid} never became {comm}")


def _wait_ignores_term(process: subprocess.Popen[bytes]) -> None:
    """Until the shell's trap is in place (SigIgn in its status has TERM's bit)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = Path(f"/proc/{process.pid}/status").read_text()
        ignored = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
        if int(ignored.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {process.pid} never ignored TERM")


def _stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def test_ends_the_sshd_processes_of_the_uid_and_nothing_else(
    bin_dir: Path, proc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jump_sessions, "SECOND_SWEEP_AFTER_SECONDS", 0.0)
    session = _spawn(bin_dir, proc_root, "sshd")
    other = _spawn(bin_dir, proc_root, "other")
    try:
        assert jump_sessions.session_pids(UID, proc_root) == [session.pid]
        assert jump_sessions.session_pids(UID + 1, proc_root) == []

        assert jump_sessions.end_sessions(UID, proc_root) == 1

        assert session.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None  # positive control: not an sshd, left running
    finally:
        _stop(session, other)


def test_a_session_that_ignores_term_is_killed(
    bin_dir: Path, proc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jump_sessions, "SECOND_SWEEP_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(jump_sessions, "GRACE_SECONDS", 0.3)
    stubborn = _spawn(bin_dir, proc_root, "sshd-session", ignore_term=True)
    try:
        _wait_ignores_term(stubborn)
        assert jump_sessions.end_sessions(UID, proc_root) == 1
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
    finally:
        _stop(stubborn)


def test_a_pid_that_is_no_session_is_never_held(bin_dir: Path, proc_root: Path) -> None:
    process = _spawn(bin_dir, proc_root, "other")
    _stop(process)
    # Gone (its pid free for reuse): nothing to hold, nothing signalled.
    assert jump_sessions._held(process.pid, UID) is None
    assert jump_sessions.end_sessions(UID, proc_root) == 0


def test_root_sessions_are_never_ended(proc_root: Path) -> None:
    with pytest.raises(HostFailure):
        jump_sessions.end_sessions(0, proc_root)


def test_an_account_being_removed_loses_every_process(bin_dir: Path, proc_root: Path) -> None:
    session = _spawn(bin_dir, proc_root, "sshd")
    other = _spawn(bin_dir, proc_root, "other")
    try:
        assert jump_sessions.kill_processes(UID, proc_root) == 2
        assert session.wait(timeout=5) == other.wait(timeout=5) == -signal.SIGKILL
    finally:
        _stop(session, other)
    with pytest.raises(HostFailure):
        jump_sessions.kill_processes(0, proc_root)


def test_a_kernel_without_pidfds_is_a_host_failure_not_a_silent_skip(
    bin_dir: Path, proc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _spawn(bin_dir, proc_root, "sshd")

    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(jump_sessions.os, "pidfd_open", no_pidfd)
    try:
        with pytest.raises(HostFailure, match="pidfd_open"):
            jump_sessions.end_sessions(UID, proc_root)
    finally:
        _stop(session)
