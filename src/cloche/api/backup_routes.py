"""The API of off-host backups: repositories, backup, list, restore, check, retention."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from cloche.api.schemas import Actor
from cloche.core import (
    backup_listing,
    backup_repositories,
    backup_restore,
    backup_retention,
    backup_run,
)
from cloche.core.context import Context
from cloche.model.errors import Invalid


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddRepository(_Body):
    """POST /v1/backups/repositories (the password and keys are stored, never returned)."""

    name: str
    url: str
    password: str | None = Field(default=None, repr=False)
    s3_access_key: str | None = Field(default=None, repr=False)
    s3_secret_key: str | None = Field(default=None, repr=False)
    sftp_command: str | None = None


class RunBackup(_Body):
    """POST /v1/backups: one environment (user and name) or all of them."""

    user: str | None = None
    name: str | None = None
    all: bool = False
    repository: str | None = None


class RestoreBackup(_Body):
    """POST /v1/backups/{backup_id}/restore."""

    as_new: str | None = None
    in_place: bool = False
    repository: str | None = None


class CheckRepository(_Body):
    """POST /v1/backups/check."""

    repository: str | None = None
    read_data: bool = False


class ApplyRetention(_Body):
    """POST /v1/backups/forget."""

    repository: str | None = None


def register_backup_routes(app: FastAPI, context: Context) -> None:
    """Add the /v1/backups routes to the daemon's app."""

    @app.post("/v1/backups/repositories", status_code=201)
    def add_repository(request: AddRepository, actor: Actor = "unknown") -> dict[str, Any]:
        return backup_repositories.add_repository(
            context,
            actor,
            request.name,
            request.url,
            password=request.password,
            s3_access_key=request.s3_access_key,
            s3_secret_key=request.s3_secret_key,
            sftp_command=request.sftp_command,
        )

    @app.get("/v1/backups/repositories")
    def list_repositories() -> list[dict[str, Any]]:
        return backup_repositories.list_repositories(context)

    @app.delete("/v1/backups/repositories/{name}", status_code=204)
    def remove_repository(name: str, actor: Actor = "unknown") -> None:
        backup_repositories.remove_repository(context, actor, name)

    @app.post("/v1/backups", status_code=202)
    def run_backup(request: RunBackup, actor: Actor = "unknown") -> dict[str, str]:
        if request.all == (request.user is not None or request.name is not None):
            raise Invalid("Name one environment as USER/NAME or give --all, not both or neither.")
        address = None if request.all else (request.user or "", request.name or "")
        return {"operation": backup_run.request_backup(context, actor, address, request.repository)}

    @app.get("/v1/backups")
    def list_backups(
        user: str | None = None, name: str | None = None, repository: str | None = None
    ) -> list[dict[str, Any]]:
        address = (user, name) if user is not None and name is not None else None
        return backup_listing.list_backups(context, address, repository)

    @app.post("/v1/backups/check")
    def check(request: CheckRepository, actor: Actor = "unknown") -> dict[str, Any]:
        return backup_retention.check_repository(
            context, actor, request.repository, read_data=request.read_data
        )

    @app.post("/v1/backups/forget", status_code=202)
    def forget(request: ApplyRetention, actor: Actor = "unknown") -> dict[str, str]:
        return {"operation": backup_retention.request_retention(context, actor, request.repository)}

    @app.delete("/v1/backups/{backup_id}", status_code=202)
    def remove(
        backup_id: str, repository: str | None = None, actor: Actor = "unknown"
    ) -> dict[str, str]:
        return {
            "operation": backup_retention.request_remove_backup(
                context, actor, backup_id, repository
            )
        }

    @app.post("/v1/backups/{backup_id}/restore", status_code=202)
    def restore(backup_id: str, request: RestoreBackup, actor: Actor = "unknown") -> dict[str, str]:
        return {
            "operation": backup_restore.request_restore(
                context,
                actor,
                backup_id,
                as_new=request.as_new,
                in_place=request.in_place,
                repository_name=request.repository,
            )
        }
