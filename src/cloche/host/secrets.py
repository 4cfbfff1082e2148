"""The root-only secrets file of backup repositories (URLs, passwords, S3 keys)."""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

from cloche.host.files import write_atomically
from cloche.model.backups import Repository, check_repository_name, pick_repository
from cloche.model.errors import HostFailure

SECRETS_DIRECTORY = "secrets"
REPOSITORIES_FILE = "backup-repositories.json"

_lock = threading.Lock()


def secrets_path(state_dir: Path) -> Path:
    """Where the repositories file lives under the state directory."""
    return state_dir / SECRETS_DIRECTORY / REPOSITORIES_FILE


def new_password() -> str:
    """A generated repository password (256 bits)."""
    return secrets.token_urlsafe(32)


def _load(path: Path) -> dict[str, Repository]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise HostFailure(
            f"Cannot read {path} ({error.strerror}); run cloche as root and check the file."
        ) from None
    try:
        raw = json.loads(text)
        return {
            name: Repository(
                name=name,
                url=str(item["url"]),
                password=str(item["password"]),
                s3_access_key=item.get("s3_access_key"),
                s3_secret_key=item.get("s3_secret_key"),
                sftp_command=item.get("sftp_command"),
            )
            for name, item in (raw.get("repositories") or {}).items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise HostFailure(
            f"{path} is damaged ({type(error).__name__}: {error}); restore it from a copy or "
            "remove the bad entry."
        ) from None


def _save(path: Path, repositories: dict[str, Repository]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    body = {"repositories": {name: repo.to_dict() for name, repo in sorted(repositories.items())}}
    write_atomically(path, json.dumps(body, indent=2, sort_keys=True) + "\n", mode=0o600)


def load_repositories(state_dir: Path) -> dict[str, Repository]:
    """Every repository by name ({} when the file does not exist yet)."""
    with _lock:
        return _load(secrets_path(state_dir))


def get_repository(state_dir: Path, name: str) -> Repository:
    """One repository; NotFound names the ones there are."""
    return pick_repository(load_repositories(state_dir), name)


def save_repository(state_dir: Path, repository: Repository) -> bool:
    """Add or replace a repository; False when it was already stored exactly so."""
    check_repository_name(repository.name)
    path = secrets_path(state_dir)
    with _lock:
        repositories = _load(path)
        if repositories.get(repository.name) == repository and _private(path):
            return False
        repositories[repository.name] = repository
        _save(path, repositories)
        return True


def _private(path: Path) -> bool:
    try:
        return (path.stat().st_mode & 0o077) == 0 and (path.parent.stat().st_mode & 0o077) == 0
    except FileNotFoundError:
        return False


def remove_repository(state_dir: Path, name: str) -> bool:
    """Forget a repository's entry; False when there was none."""
    path = secrets_path(state_dir)
    with _lock:
        repositories = _load(path)
        if repositories.pop(name, None) is None:
            return False
        _save(path, repositories)
        return True


class HostSecrets:
    """The secrets file under the state directory (root only: 0600 in a 0700 directory)."""

    def load_repositories(self, state_dir: Path) -> dict[str, Repository]:
        """Every repository by name ({} when the file does not exist yet)."""
        return load_repositories(state_dir)

    def save_repository(self, state_dir: Path, repository: Repository) -> bool:
        """Add or replace a repository; False when it was already stored exactly so."""
        return save_repository(state_dir, repository)

    def remove_repository(self, state_dir: Path, name: str) -> bool:
        """Forget a repository's entry; False when there was none."""
        return remove_repository(state_dir, name)

    def new_password(self) -> str:
        """A generated repository password (256 bits)."""
        return new_password()
