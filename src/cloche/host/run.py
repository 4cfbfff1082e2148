"""The one place cloche runs commands: argv lists, timeouts, logging and clear failures."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cloche.model.errors import HostFailure

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Completed:
    """The outcome of a finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited with status 0."""
        return self.returncode == 0


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-lines:] if line.strip())


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    input_text: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run argv (never through a shell) and return its output; raise HostFailure if check fails."""
    command = tuple(str(part) for part in argv)
    log.debug("running %s", " ".join(command))
    try:
        finished = subprocess.run(
            command,
            input=input_text,
            capture_output=True,
            text=True,
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
    result = Completed(command, finished.returncode, finished.stdout, finished.stderr)
    if check and not result.ok:
        detail = _tail(result.stderr) or _tail(result.stdout) or "no output"
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
