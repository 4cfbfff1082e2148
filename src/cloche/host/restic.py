"""restic on this host: every call goes through host/run.py, its refusals become one sentence."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cloche.host.run import run, run_streaming
from cloche.model.backups import (
    CACHE_DIRECTORY,
    RESTIC_LONG_TIMEOUT_SECONDS,
    RESTIC_TIMEOUT_SECONDS,
    Repository,
    backups_dir,
    is_missing_repository,
    is_wrong_password,
    restic_argv,
    restic_environment,
)
from cloche.model.errors import HostFailure, Invalid, NotFound
from cloche.model.process import Completed
from cloche.model.text import output_tail


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
            f"({output_tail(result.stderr, lines=1) or 'no output'}); check the URL and "
            "credentials, or add it again."
        )
    raise HostFailure(
        f"restic failed to {doing} in backup repository {repository!r} "
        f"(exit status {result.returncode}: "
        f"{output_tail(result.stderr or result.stdout, lines=3) or 'no output'}); "
        "check the repository with 'cloche backup check'."
    )


def _environment(state_dir: Path, repository: Repository) -> dict[str, str]:
    backups = backups_dir(state_dir)
    backups.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache = backups / CACHE_DIRECTORY
    cache.mkdir(exist_ok=True, mode=0o700)
    return restic_environment(repository, os.environ, str(cache))


class HostRestic:
    """The restic binary of this host, with its cache under the state directory."""

    def run(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        *,
        doing: str,
        timeout: float = RESTIC_TIMEOUT_SECONDS,
        check: bool = True,
    ) -> Completed:
        """Run 'restic ARGUMENTS' (output captured); judged unless check is False."""
        completed = run(
            restic_argv(repository, *arguments),
            env=_environment(state_dir, repository),
            timeout=timeout,
            check=False,
        )
        return judge(completed, repository.name, doing) if check else completed

    def run_with_stdin(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        chunks: Iterable[bytes],
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' reading chunks on stdin (a backup)."""
        completed = run_streaming(
            restic_argv(repository, *arguments),
            chunks=chunks,
            env=_environment(state_dir, repository),
            timeout=RESTIC_LONG_TIMEOUT_SECONDS,
        )
        return judge(completed, repository.name, doing)

    def run_to_file(
        self,
        state_dir: Path,
        repository: Repository,
        arguments: Sequence[str],
        path: Path,
        *,
        doing: str,
    ) -> Completed:
        """Run 'restic ARGUMENTS' with stdout written to path (a dump)."""
        completed = run_streaming(
            restic_argv(repository, *arguments),
            stdout_path=str(path),
            env=_environment(state_dir, repository),
            timeout=RESTIC_LONG_TIMEOUT_SECONDS,
        )
        return judge(completed, repository.name, doing)
