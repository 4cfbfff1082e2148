"""restic on this host: every call goes through host/run.py, its refusals become one sentence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cloche.host.run import Completed, run, run_streaming
from cloche.model.backups import is_missing_repository, is_wrong_password
from cloche.model.errors import HostFailure, Invalid, NotFound

LONG_TIMEOUT_SECONDS = 6 * 3600.0


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no output"


def judge(result: Completed, repository: str, doing: str) -> Completed:
    """Return result when restic succeeded; raise one sentence naming the repository otherwise."""
    if result.ok:
        return result
    if is_wrong_password(result.stderr):
        raise Invalid(
            f"The password of backup repository {repository!r} is wrong; give the right one "
            "with 'cloche backup repo add NAME URL --password-file FILE'."
        )
    if is_missing_repository(result.stderr):
        raise NotFound(
            f"Backup repository {repository!r} does not exist at its URL or cannot be reached "
            f"({_tail(result.stderr, 1)}); check the URL and credentials, or add it again."
        )
    raise HostFailure(
        f"restic failed to {doing} in backup repository {repository!r} "
        f"(exit status {result.returncode}: {_tail(result.stderr or result.stdout)}); "
        "check the repository with 'cloche backup check'."
    )


def restic(
    argv: Sequence[str],
    environment: Mapping[str, str],
    *,
    repository: str,
    doing: str,
    timeout: float = 600.0,
    check: bool = True,
) -> Completed:
    """Run a restic command (output captured); judged unless check is False."""
    result = run(argv, env=environment, timeout=timeout, check=False)
    return judge(result, repository, doing) if check else result


def restic_stdin(
    argv: Sequence[str],
    environment: Mapping[str, str],
    chunks: Iterable[bytes],
    *,
    repository: str,
    doing: str,
) -> Completed:
    """Run a restic command that reads chunks on stdin (a backup)."""
    result = run_streaming(argv, chunks=chunks, env=environment, timeout=LONG_TIMEOUT_SECONDS)
    return judge(result, repository, doing)


def restic_to_file(
    argv: Sequence[str],
    environment: Mapping[str, str],
    path: str,
    *,
    repository: str,
    doing: str,
) -> Completed:
    """Run a restic command whose stdout goes to a file (a dump)."""
    result = run_streaming(argv, stdout_path=path, env=environment, timeout=LONG_TIMEOUT_SECONDS)
    return judge(result, repository, doing)
