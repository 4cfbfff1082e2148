"""The daemon's HTTP API: routes that translate requests into core use cases, errors mapped once."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloche import __version__
from cloche.api.backup_routes import register_backup_routes
from cloche.api.network_routes import register_network_routes
from cloche.api.route_routes import register_route_routes
from cloche.api.schemas import (
    Actor,
    CreateEnvironment,
    CreateUser,
    ExecRequest,
    KeyRequest,
    Resize,
    SetQuota,
)
from cloche.api.snapshot_routes import register_snapshot_routes
from cloche.core import environments, ssh_access, users
from cloche.core.context import Context
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.errors import ClocheError
from cloche.model.errors_wire import error_body
from cloche.model.text import decode_base64


def _validation_sentence(error: RequestValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"] if part != "body")
    message = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
    return f"{location or 'request'}: {message}; fix the request and retry."


def create_app(context: Context) -> FastAPI:
    """The FastAPI app serving one daemon context."""
    app = FastAPI(
        title="cloche", version=__version__, docs_url="/docs", openapi_url="/openapi.json"
    )

    @app.exception_handler(ClocheError)
    async def cloche_error(_: Request, error: ClocheError) -> JSONResponse:
        return JSONResponse(status_code=error.http_status, content=error_body(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"error": "Invalid", "message": _validation_sentence(error)}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = "NotFound" if error.status_code == 404 else "Invalid"
        message = (
            f"{request.method} {request.url.path} is not part of the cloche API; check the "
            "names in the request (user and environment names are plain words)."
            if error.status_code in (404, 405)
            else f"{error.detail}."
        )
        return JSONResponse(
            status_code=error.status_code, content={"error": kind, "message": message}
        )

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        # "config" lets 'host init' restart a daemon whose config file changed since it started.
        return {
            "version": __version__,
            "status": "ok",
            "code": code_fingerprint(),
            "config": config_fingerprint(context.config),
        }

    # Users -----------------------------------------------------------------------------------

    @app.post("/v1/users", status_code=201)
    def add_user(request: CreateUser, actor: Actor = "unknown") -> dict[str, Any]:
        return users.add_user(context, actor, request.to_command())

    @app.get("/v1/users")
    def list_users() -> list[dict[str, Any]]:
        return users.list_users(context)

    @app.get("/v1/users/{name}")
    def show_user(name: str) -> dict[str, Any]:
        return users.show_user(context, name)

    @app.patch("/v1/users/{name}")
    def set_quota(name: str, request: SetQuota, actor: Actor = "unknown") -> dict[str, Any]:
        return users.set_quota(context, actor, name, request.to_changes())

    @app.delete("/v1/users/{name}", status_code=202)
    def remove_user(name: str, purge: bool = False, actor: Actor = "unknown") -> dict[str, str]:
        return {"operation": users.request_remove(context, actor, name, purge=purge)}

    @app.post("/v1/users/{name}/keys", status_code=201)
    def add_key(name: str, request: KeyRequest, actor: Actor = "unknown") -> dict[str, Any]:
        return users.add_key(context, actor, name, request.public_key)

    @app.get("/v1/users/{name}/ssh-config")
    def ssh_config(
        name: str,
        known_hosts_path: str,
        host: str | None = None,
        port: int | None = None,
    ) -> dict[str, str]:
        return ssh_access.ssh_config(context, name, host, port, known_hosts_path)

    @app.delete("/v1/users/{name}/keys/{fingerprint:path}")
    def remove_key(name: str, fingerprint: str, actor: Actor = "unknown") -> dict[str, Any]:
        return users.remove_key(context, actor, name, fingerprint)

    # Environments ----------------------------------------------------------------------------

    @app.post("/v1/environments", status_code=202)
    def create_environment(request: CreateEnvironment, actor: Actor = "unknown") -> dict[str, str]:
        return {"operation": environments.request_create(context, actor, request.to_command())}

    @app.get("/v1/environments")
    def list_environments(user: str | None = None) -> list[dict[str, Any]]:
        return environments.list_environments(context, user)

    @app.get("/v1/environments/{user}/{name}")
    def environment_info(user: str, name: str) -> dict[str, Any]:
        return environments.environment_info(context, user, name)

    @app.post("/v1/environments/{user}/{name}/exec")
    def execute(
        user: str, name: str, request: ExecRequest, actor: Actor = "unknown"
    ) -> dict[str, Any]:
        result = environments.execute(
            context,
            actor,
            user,
            name,
            request.command,
            stdin=decode_base64(request.stdin_base64, "stdin_base64"),
            as_root=request.root,
        )
        return {
            "exit_code": result.exit_code,
            "stdout_base64": base64.b64encode(result.stdout).decode(),
            "stderr_base64": base64.b64encode(result.stderr).decode(),
        }

    def act(action: str) -> Callable[..., dict[str, str]]:
        def endpoint(user: str, name: str, actor: Actor = "unknown") -> dict[str, str]:
            return {"operation": environments.request_action(context, actor, user, name, action)}

        return endpoint

    # One route per action: a catch-all '/{action}' would shadow .../snapshots, .../routes.
    for action in environments.ACTIONS:
        app.add_api_route(
            f"/v1/environments/{{user}}/{{name}}/{action}",
            act(action),
            methods=["POST"],
            status_code=202,
            name=f"{action}_environment",
        )

    @app.delete("/v1/environments/{user}/{name}", status_code=202)
    def remove_environment(user: str, name: str, actor: Actor = "unknown") -> dict[str, str]:
        return {"operation": environments.request_remove(context, actor, user, name)}

    @app.patch("/v1/environments/{user}/{name}")
    def resize(user: str, name: str, request: Resize, actor: Actor = "unknown") -> dict[str, Any]:
        return environments.resize(context, actor, user, name, request.to_changes())

    # Operations and audit --------------------------------------------------------------------

    @app.get("/v1/operations/{operation_id}")
    def operation(operation_id: str) -> dict[str, Any]:
        return context.operations.describe(operation_id)

    @app.get("/v1/audit")
    def audit(limit: int = 50) -> list[dict[str, Any]]:
        return [event.to_dict() for event in context.audit.read(limit=limit)]

    @app.get("/v1/audit/verify")
    def audit_verify() -> dict[str, Any]:
        result = context.audit.verify()
        return {
            "ok": result.ok,
            "count": result.count,
            "first_bad_line": result.first_bad_line,
            "reason": result.reason,
        }

    register_backup_routes(app, context)
    register_snapshot_routes(app, context)
    register_network_routes(app, context)
    register_route_routes(app, context)
    return app
