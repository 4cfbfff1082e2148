"""Background services without systemd: pid files under the state dir, start, stop, liveness."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloche.host.files import write_atomically
from cloche.host.run import start_background


def pid_file(state_dir: Path, name: str) -> Path:
    """Where the pid of service name is kept."""
    return state_dir / "run" / f"{name}.pid"


def running_pid(state_dir: Path, name: str) -> int | None:
    """The pid of service name if its pid file names a live process, else None."""
    try:
        pid = int(pid_file(state_dir, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def start_service(
    state_dir: Path,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> int:
    """Start argv detached, its output in log/NAME.log and its pid in run/NAME.pid."""
    (state_dir / "run").mkdir(parents=True, exist_ok=True)
    (state_dir / "log").mkdir(parents=True, exist_ok=True)
    pid = start_background(argv, log_path=str(state_dir / "log" / f"{name}.log"), env=env)
    write_atomically(pid_file(state_dir, name), f"{pid}\n")
    return pid


def stop_service(state_dir: Path, name: str, timeout_seconds: float = 15.0) -> bool:
    """SIGTERM the service we started (SIGKILL after timeout); return whether it was running."""
    pid = running_pid(state_dir, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        pid_file(state_dir, name).unlink()
    return True


def http_get_over_unix_socket(socket_path: str, path: str, timeout: float = 2.0) -> bytes | None:
    """GET path from an HTTP server on a unix socket; the body on 200, else None."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(socket_path)
            connection.sendall(f"GET {path} HTTP/1.0\r\nHost: cloche\r\n\r\n".encode())
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return body if head.split(b" ", 2)[1:2] == [b"200"] else None
