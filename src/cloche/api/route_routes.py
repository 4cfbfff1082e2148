"""Published routes: GET /v1/routes, and GET/POST/DELETE .../{user}/{name}/routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field

from cloche.api.schemas import Actor
from cloche.core import routes
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}/routes"


class Publish(BaseModel):
    """POST .../routes: one route spec in the grammar of DESIGN.md."""

    model_config = ConfigDict(extra="forbid")

    spec: str = Field(max_length=2000)


def register_route_routes(app: FastAPI, context: Context) -> None:
    """Add the publishing routes to app."""

    @app.get("/v1/routes")
    def all_routes(user: str | None = None) -> list[dict[str, Any]]:
        return routes.list_routes(context, user)

    @app.get(BASE)
    def environment_routes(user: str, name: str) -> list[dict[str, Any]]:
        return routes.list_routes(context, user, name)

    @app.post(BASE, status_code=201)
    def publish(user: str, name: str, request: Publish, actor: Actor = "unknown") -> dict[str, Any]:
        return routes.publish(context, actor, user, name, request.spec)

    # The spec holds slashes, so it travels as a query parameter rather than in the path.
    @app.delete(BASE)
    def unpublish(
        user: str, name: str, spec: Annotated[str, Query(max_length=2000)], actor: Actor = "unknown"
    ) -> dict[str, Any]:
        return routes.unpublish(context, actor, user, name, spec)
