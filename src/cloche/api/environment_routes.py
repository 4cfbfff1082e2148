"""The environments routes: create, list, info, exec, start/stop/restart, resize, remove."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor, Caller, ListedUser
from cloche.api.schemas import ACCEPTED, errors
from cloche.core import environments
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}"


def register_environment_routes(app: FastAPI, context: Context) -> None:
    """Add the /v1/environments routes to app."""

    @app.post(
        "/v1/environments",
        status_code=202,
        response_description=ACCEPTED,
        responses=errors(403, 404, 409, 422),
    )
    def create_environment(
        request: wire.CreateEnvironment, principal: Caller, actor: Actor = "unknown"
    ) -> wire.OperationAccepted:
        operation = environments.request_create(context, actor, request.to_command())
        if principal.token_id is not None and principal.environments is not None:
            # An agent's own sandboxes stay within reach of the limited token that made them.
            context.database.tokens.add_environments(principal.token_id, [request.name])
        return wire.OperationAccepted(operation=operation)

    @app.get("/v1/environments", responses=errors(404, 422))
    def list_environments(user: ListedUser) -> list[wire.Environment]:
        return [mapping.environment(view) for view in environments.list_environments(context, user)]

    @app.get(BASE, responses=errors(404, 422))
    def environment_info(user: str, name: str) -> wire.EnvironmentInfo:
        return mapping.environment_info(environments.environment_info(context, user, name))

    @app.post(f"{BASE}/exec", responses=errors(404, 422))
    def execute(
        user: str, name: str, request: wire.ExecRequest, actor: Actor = "unknown"
    ) -> wire.ExecResult:
        result = environments.execute(
            context,
            actor,
            user,
            name,
            request.command,
            stdin=request.stdin(),
            as_root=request.root,
        )
        return mapping.exec_result(result)

    def act(action: str) -> Callable[..., wire.OperationAccepted]:
        def endpoint(user: str, name: str, actor: Actor = "unknown") -> wire.OperationAccepted:
            return wire.OperationAccepted(
                operation=environments.request_action(context, actor, user, name, action)
            )

        return endpoint

    # One route per action: a catch-all '/{action}' would shadow .../snapshots, .../routes.
    for action in environments.ACTIONS:
        app.add_api_route(
            f"{BASE}/{action}",
            act(action),
            methods=["POST"],
            status_code=202,
            name=f"{action}_environment",
            response_model=wire.OperationAccepted,
            response_description=ACCEPTED,
            responses=errors(404, 422),
        )

    @app.delete(BASE, status_code=202, response_description=ACCEPTED, responses=errors(404, 422))
    def remove_environment(
        user: str, name: str, actor: Actor = "unknown"
    ) -> wire.OperationAccepted:
        return wire.OperationAccepted(
            operation=environments.request_remove(context, actor, user, name)
        )

    @app.patch(BASE, responses=errors(403, 404, 422))
    def resize(
        user: str, name: str, request: wire.Resize, actor: Actor = "unknown"
    ) -> wire.Environment:
        return mapping.environment(
            environments.resize(context, actor, user, name, request.to_changes())
        )
