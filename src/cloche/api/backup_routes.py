"""The API of off-host backups: repositories, backup, list, restore, check, retention."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor, ListedUser
from cloche.api.schemas import ACCEPTED, errors
from cloche.core import (
    backup_listing,
    backup_repositories,
    backup_restore,
    backup_retention,
    backup_run,
)
from cloche.core.context import Context
from cloche.model.errors import Invalid


def register_backup_routes(app: FastAPI, context: Context) -> None:
    """Add the /v1/backups routes to the daemon's app."""

    @app.post("/v1/backups/repositories", status_code=201, responses=errors(422))
    def add_repository(
        request: wire.AddRepository, actor: Actor = "unknown"
    ) -> wire.RepositoryAdded:
        added = backup_repositories.add_repository(
            context,
            actor,
            request.name,
            request.url,
            password=request.password,
            s3_access_key=request.s3_access_key,
            s3_secret_key=request.s3_secret_key,
            sftp_command=request.sftp_command,
        )
        return mapping.repository_added(added)

    @app.get("/v1/backups/repositories", responses=errors())
    def list_repositories() -> list[wire.Repository]:
        return [mapping.repository(each) for each in backup_repositories.list_repositories(context)]

    @app.delete(
        "/v1/backups/repositories/{name}",
        status_code=204,
        response_description="Removed: the repository is forgotten (its data stays)",
        responses=errors(404, 409, 422),
    )
    def remove_repository(name: str, actor: Actor = "unknown") -> None:
        backup_repositories.remove_repository(context, actor, name)

    @app.post(
        "/v1/backups",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(404, 409, 422),
    )
    def run_backup(request: wire.RunBackup, actor: Actor = "unknown") -> wire.OperationAccepted:
        if request.all == (request.user is not None or request.name is not None):
            raise Invalid("Name one environment as USER/NAME or give --all, not both or neither.")
        address = None if request.all else (request.user or "", request.name or "")
        return wire.OperationAccepted(
            operation=backup_run.request_backup(context, actor, address, request.repository)
        )

    @app.get("/v1/backups", responses=errors(404, 422))
    def list_backups(
        user: ListedUser, name: str | None = None, repository: str | None = None
    ) -> list[wire.Backup]:
        address = (user, name) if user is not None and name is not None else None
        return [
            mapping.backup(entry)
            for entry in backup_listing.list_backups(context, address, repository, owner=user)
        ]

    @app.post("/v1/backups/check", responses=errors(404, 422))
    def check(request: wire.CheckRepository, actor: Actor = "unknown") -> wire.RepositoryChecked:
        checked = backup_retention.check_repository(
            context, actor, request.repository, read_data=request.read_data
        )
        return mapping.repository_checked(checked)

    @app.post(
        "/v1/backups/forget",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(404, 422),
    )
    def forget(request: wire.ApplyRetention, actor: Actor = "unknown") -> wire.OperationAccepted:
        return wire.OperationAccepted(
            operation=backup_retention.request_retention(context, actor, request.repository)
        )

    @app.delete(
        "/v1/backups/{backup_id}",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(404, 422),
    )
    def remove(
        backup_id: str, repository: str | None = None, actor: Actor = "unknown"
    ) -> wire.OperationAccepted:
        return wire.OperationAccepted(
            operation=backup_retention.request_remove_backup(context, actor, backup_id, repository)
        )

    @app.post(
        "/v1/backups/{backup_id}/restore",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(403, 404, 409, 422),
    )
    def restore(
        backup_id: str, request: wire.RestoreBackup, actor: Actor = "unknown"
    ) -> wire.OperationAccepted:
        return wire.OperationAccepted(
            operation=backup_restore.request_restore(
                context,
                actor,
                backup_id,
                as_new=request.as_new,
                in_place=request.in_place,
                repository_name=request.repository,
            )
        )
