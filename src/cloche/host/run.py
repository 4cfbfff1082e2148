"""The one place cloche runs commands: argv lists, timeouts, logging and clear failures."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO

from cloche.model.errors import HostFailure
from cloche.model.process import Completed
from cloche.model.text import output_tail

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 120.0


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    input_text: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    verbatim: bool = False,
) -> Completed:
    """Run argv (never through a shell) and return its output; raise HostFailure if check fails.

    verbatim: output decoded as UTF-8 with replacement characters and newlines left as they are
    (text mode would fail on a stray byte and turn every "\\r" into a line break).
    """
    command = tuple(str(part) for part in argv)
    log.debug("running %s", " ".join(command))
    try:
        finished = subprocess.run(
            command,
            input=input_text.encode() if verbatim and input_text is not None else input_text,
            capture_output=True,
            text=not verbatim,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as error:
        raise HostFailure(
            f"The command {command[0]!r} is not installed; run 'cloche host init' to install it."
        ) from error
    except subprocess.TimeoutExpired as error:
        raise HostFailure(
            f"'{' '.join(command[:3])}' did not finish within {timeout:.0f} s; "
            "check the host's load and try again."
        ) from error
    stdout, stderr = finished.stdout, finished.stderr
    if verbatim:
        stdout, stderr = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    result = Completed(command, finished.returncode, stdout, stderr)
    if check and not result.ok:
        output = result.stderr.strip() or result.stdout
        detail = output_tail(output, lines=5) or "no output"
        raise HostFailure(
            f"'{' '.join(command[:3])}' failed with exit status {result.returncode}: {detail}"
        )
    return result


def start_background(
    argv: Sequence[str], *, log_path: str, env: Mapping[str, str] | None = None
) -> int:
    """Start a detached long-running process with its output in log_path; return its pid."""
    command = [str(part) for part in argv]
    log.debug("starting in background %s", " ".join(command))
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return process.pid


def run_with_stderr(argv: Sequence[str], stderr_fd: int) -> Callable[[], int]:
    """Start argv with stderr on stderr_fd (stdin and stdout closed); return its wait()."""
    command = [str(part) for part in argv]
    log.debug("starting with its stderr on fd %d: %s", stderr_fd, " ".join(command))
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr_fd
    )
    return process.wait


def run_streaming(
    argv: Sequence[str],
    *,
    chunks: Iterable[bytes] | None = None,
    stdout_path: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Completed:
    """Run argv feeding chunks to its stdin and/or writing its stdout to a file; never checks.

    For data too large for memory (an export into 'restic backup --stdin', 'restic dump' to a
    file). stderr (and stdout when not sent to a file) are collected as text. The caller judges
    the exit status; a timeout kills the command and raises HostFailure.
    """
    command = tuple(str(part) for part in argv)
    log.debug("running (streaming) %s", " ".join(command))
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout_path, "wb")) if stdout_path else subprocess.PIPE
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if chunks is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                env=dict(env) if env is not None else None,
            )
        except FileNotFoundError as error:
            raise HostFailure(
                f"The command {command[0]!r} is not installed; run 'cloche host init' to install "
                "it."
            ) from error
        collected: dict[str, bytes] = {}

        def drain(name: str, stream: IO[bytes] | None) -> None:
            collected[name] = stream.read() if stream is not None else b""

        readers = [
            threading.Thread(target=drain, args=("stderr", process.stderr), daemon=True),
            threading.Thread(target=drain, args=("stdout", process.stdout), daemon=True),
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + timeout
        feed_error: BaseException | None = None
        if chunks is not None and process.stdin is not None:
            try:
                for chunk in chunks:
                    process.stdin.write(chunk)
                    if time.monotonic() > deadline:
                        break
            except BrokenPipeError:
                pass  # the command ended early; its exit status and stderr tell why
            except BaseException as error:  # the source failed: stop the command, then re-raise
                feed_error = error
                process.kill()
            finally:
                with contextlib.suppress(BrokenPipeError):
                    process.stdin.close()
        try:
            returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.wait()
            raise HostFailure(
                f"'{' '.join(command[:3])}' did not finish within {timeout:.0f} s; "
                "check the host's load and the target, and try again."
            ) from error
        for reader in readers:
            reader.join()
        if feed_error is not None:
            raise feed_error
    return Completed(
        command,
        returncode,
        collected.get("stdout", b"").decode("utf-8", "replace"),
        collected.get("stderr", b"").decode("utf-8", "replace"),
    )
