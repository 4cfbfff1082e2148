"""The host's routes: brute-force bans (GET /v1/host/bans, DELETE /v1/host/bans/{address})."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor
from cloche.api.schemas import errors
from cloche.core import bans
from cloche.core.context import Context


def register_host_routes(app: FastAPI, context: Context) -> None:
    """Add the host routes to app."""

    @app.get("/v1/host/bans", responses=errors())
    def list_bans() -> list[wire.Ban]:
        return [mapping.ban(ban) for ban in bans.list_bans(context)]

    @app.delete("/v1/host/bans/{address:path}", responses=errors(404, 422))
    def lift_ban(address: str, actor: Actor = "unknown") -> wire.Ban:
        return mapping.ban(bans.lift_ban(context, actor, address))
