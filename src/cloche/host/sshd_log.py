"""The relay between sshd's stderr and its log file: one line per message sshd wrote.

Without systemd, `sshd -E FILE` writes newlines a client sent (a disconnect reason, a user name)
as they are, so a client could write whole lines of its own into the log the SSH audit reads.
Here sshd runs in the foreground (-D -e) with its stderr on a packet-mode pipe (pipe2 O_DIRECT):
each write sshd makes (one message) is read as one packet and written as one escaped line.

Run as `python -m cloche.host.sshd_log LOG -- SSHD ARGS...`; it ends when sshd does. A relay
that stalls or dies never stalls sshd: the pipe is non-blocking on sshd's side (a message that
does not fit is dropped) and sshd ignores a closed reader.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cloche.host.run import run_with_stderr
from cloche.model.sshlog import frame_message

# Room for a burst of messages (a packet takes a whole page of the pipe's buffer).
PIPE_BYTES = 1 << 20
_PACKET_MAX = 65536


def relay(log_path: Path, argv: Sequence[str]) -> int:
    """Run argv with its stderr framed, message by message, into log_path; its exit status."""
    read_fd, write_fd = os.pipe2(os.O_DIRECT | os.O_CLOEXEC)
    try:
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        os.set_blocking(write_fd, False)
        wait = run_with_stderr(argv, write_fd)
    finally:
        os.close(write_fd)  # sshd (and its children) hold the only writing ends now
    log_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while packet := os.read(read_fd, _PACKET_MAX):
            os.write(descriptor, frame_message(packet))
    finally:
        os.close(descriptor)
        os.close(read_fd)
    return wait()


def main(arguments: Sequence[str]) -> int:
    """The command line: LOG -- ARGV..."""
    if len(arguments) < 3 or arguments[1] != "--":
        print("usage: python -m cloche.host.sshd_log LOG -- SSHD ARGS...", file=sys.stderr)
        return 2
    return relay(Path(arguments[0]), arguments[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
