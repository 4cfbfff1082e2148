"""Published routes: GET /v1/routes, and GET/POST/DELETE .../{user}/{name}/routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor, ListedUser
from cloche.api.schemas import errors
from cloche.core import routes
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}/routes"


def register_route_routes(app: FastAPI, context: Context) -> None:
    """Add the publishing routes to app."""

    @app.get("/v1/routes", responses=errors(404, 422))
    def all_routes(user: ListedUser) -> list[wire.Route]:
        return [mapping.route(view) for view in routes.list_routes(context, user)]

    @app.get(BASE, responses=errors(404, 422))
    def environment_routes(user: str, name: str) -> list[wire.Route]:
        return [mapping.route(view) for view in routes.list_routes(context, user, name)]

    @app.post(BASE, status_code=201, responses=errors(404, 409, 422))
    def publish(
        user: str, name: str, request: wire.Publish, actor: Actor = "unknown"
    ) -> wire.PublishedRoute:
        return mapping.published_route(routes.publish(context, actor, user, name, request.spec))

    # The spec holds slashes, so it travels as a query parameter rather than in the path.
    @app.delete(BASE, responses=errors(404, 422))
    def unpublish(
        user: str, name: str, spec: Annotated[str, Query(max_length=2000)], actor: Actor = "unknown"
    ) -> wire.RouteRemoved:
        return mapping.route_removed(routes.unpublish(context, actor, user, name, spec))
