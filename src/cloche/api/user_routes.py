"""The users routes: add, list, show, quotas, keys, ssh-config, remove (/v1/users)."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor
from cloche.api.schemas import ACCEPTED, errors
from cloche.core import ssh_access, users
from cloche.core.context import Context


def register_user_routes(app: FastAPI, context: Context) -> None:
    """Add the /v1/users routes to app."""

    @app.post("/v1/users", status_code=201, responses=errors(403, 409, 422))
    def add_user(request: wire.CreateUser, actor: Actor = "unknown") -> wire.User:
        return mapping.user(users.add_user(context, actor, request.to_command()))

    @app.get("/v1/users", responses=errors())
    def list_users() -> list[wire.User]:
        return [mapping.user(view) for view in users.list_users(context)]

    @app.get("/v1/users/{name}", responses=errors(404, 422))
    def show_user(name: str) -> wire.UserDetail:
        return mapping.user_detail(users.show_user(context, name))

    @app.patch("/v1/users/{name}", responses=errors(404, 409, 422))
    def set_quota(name: str, request: wire.SetQuota, actor: Actor = "unknown") -> wire.User:
        return mapping.user(users.set_quota(context, actor, name, request.to_changes()))

    @app.put("/v1/users/{name}/host-account", responses=errors(404, 409, 422))
    def set_host_account(
        name: str, request: wire.HostAccountRequest, actor: Actor = "unknown"
    ) -> wire.User:
        return mapping.user(users.set_host_account(context, actor, name, request.host_account))

    @app.delete(
        "/v1/users/{name}",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(404, 409, 422),
    )
    def remove_user(
        name: str, purge: bool = False, actor: Actor = "unknown"
    ) -> wire.OperationAccepted:
        return wire.OperationAccepted(
            operation=users.request_remove(context, actor, name, purge=purge)
        )

    @app.post("/v1/users/{name}/keys", status_code=201, responses=errors(404, 409, 422))
    def add_key(name: str, request: wire.KeyRequest, actor: Actor = "unknown") -> wire.KeyAdded:
        return mapping.key_added(*users.add_key(context, actor, name, request.public_key))

    @app.post("/v1/users/{name}/keys/batch", status_code=201, responses=errors(404, 409, 422))
    def add_keys(
        name: str, request: wire.KeysRequest, actor: Actor = "unknown"
    ) -> list[wire.KeyAdded]:
        records, push = users.add_keys(context, actor, name, request.public_keys)
        return [mapping.key_added(record, push) for record in records]

    @app.get("/v1/users/{name}/ssh-config", responses=errors(404, 422))
    def ssh_config(
        name: str,
        known_hosts_path: str,
        host: str | None = None,
        port: int | None = None,
        identity_file: str | None = None,
    ) -> wire.SshConfig:
        return mapping.ssh_config(
            ssh_access.ssh_config(context, name, host, port, known_hosts_path, identity_file)
        )

    @app.delete("/v1/users/{name}/keys/{fingerprint:path}", responses=errors(404, 422))
    def remove_key(name: str, fingerprint: str, actor: Actor = "unknown") -> wire.KeyRemoved:
        push = users.remove_key(context, actor, name, fingerprint)
        return wire.KeyRemoved(fingerprint=fingerprint, push=mapping.key_push(push))
