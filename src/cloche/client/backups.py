"""Off-host backups with restic: repositories, backups, restores, checks and retention."""

from __future__ import annotations

from pydantic import JsonValue

from cloche.client.connection import Connection, path_of
from cloche.client.operations import DEFAULT_WAIT, OperationHandle, Operations
from cloche.client.resource import Resource, given
from cloche.wire import Backup, Repository, RepositoryAdded, RepositoryChecked


class BackupRepositories(Resource):
    """/v1/backups/repositories: where backups go (the secrets stay on the host)."""

    def add(
        self,
        name: str,
        url: str,
        *,
        password: str | None = None,
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        sftp_command: str | None = None,
    ) -> RepositoryAdded:
        """Add a repository: initialise it when new, else check its password.

        Without a password the daemon generates one (kept in its root-only file).
        """
        body = {
            "name": name,
            "url": url,
            **given(
                password=password,
                s3_access_key=s3_access_key,
                s3_secret_key=s3_secret_key,
                sftp_command=sftp_command,
            ),
        }
        return self._connection.fetch(
            RepositoryAdded, "POST", path_of("backups", "repositories"), body=body
        )

    def list(self) -> list[Repository]:
        """Every repository (never a secret) and which one is the default."""
        return self._connection.fetch_list(Repository, path_of("backups", "repositories"))

    def remove(self, name: str) -> None:
        """Forget a repository (its data stays where it is)."""
        self._connection.send("DELETE", path_of("backups", "repositories", name))


class Backups(Resource):
    """/v1/backups: back up, list, restore, check, apply retention, remove."""

    def __init__(self, connection: Connection, operations: Operations) -> None:
        super().__init__(connection, operations)
        self.repositories = BackupRepositories(connection, operations)

    def run(
        self,
        user: str,
        name: str,
        *,
        repository: str | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Back up one environment: snapshot, export, stream into restic."""
        body: dict[str, JsonValue] = {
            "all": False,
            "repository": repository,
            "user": user,
            "name": name,
        }
        return self._start("POST", path_of("backups"), body=body, wait=wait, timeout=timeout)

    def run_all(
        self, *, repository: str | None = None, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Back up every environment, one after the other."""
        body: dict[str, JsonValue] = {"all": True, "repository": repository}
        return self._start("POST", path_of("backups"), body=body, wait=wait, timeout=timeout)

    def list(
        self,
        user: str | None = None,
        name: str | None = None,
        *,
        repository: str | None = None,
    ) -> list[Backup]:
        """Backups (of one environment when user and name are given), oldest first."""
        params: dict[str, str | int | bool] = {}
        if user is not None and name is not None:
            params.update(user=user, name=name)
        if repository is not None:
            params["repository"] = repository
        return self._connection.fetch_list(Backup, path_of("backups"), params=params)

    def restore(
        self,
        backup_id: str,
        *,
        as_new: str | None = None,
        in_place: bool = False,
        repository: str | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Restore a backup as a new environment as_new (new identity), or in place."""
        body: dict[str, JsonValue] = {
            "as_new": as_new,
            "in_place": in_place,
            "repository": repository,
        }
        path = path_of("backups", backup_id, "restore")
        return self._start("POST", path, body=body, wait=wait, timeout=timeout)

    def check(self, *, repository: str | None = None, read_data: bool = False) -> RepositoryChecked:
        """'restic check' a repository (read_data reads every pack); damage is a HostFailure.

        It waits as long as the check takes.
        """
        body: dict[str, JsonValue] = {"repository": repository, "read_data": read_data}
        return self._connection.fetch(
            RepositoryChecked, "POST", path_of("backups", "check"), body=body, unlimited=True
        )

    def forget(
        self, *, repository: str | None = None, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """Apply retention (backups.keep_*) per environment, then prune the repository."""
        path = path_of("backups", "forget")
        return self._start(
            "POST", path, body={"repository": repository}, wait=wait, timeout=timeout
        )

    def remove(
        self,
        backup_id: str,
        *,
        repository: str | None = None,
        wait: bool = False,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Remove one backup for good: forget it, then prune what no other backup shares."""
        params = {"repository": repository} if repository is not None else None
        path = path_of("backups", backup_id)
        return self._start("DELETE", path, params=params, wait=wait, timeout=timeout)
