"""The network routes: an environment's egress policy (GET/PATCH .../{user}/{name}/egress)."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor, Caller
from cloche.api.schemas import errors
from cloche.core import firewall
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}"


def register_network_routes(app: FastAPI, context: Context) -> None:
    """Add the network routes to app."""

    @app.get(f"{BASE}/egress", responses=errors(404, 422))
    def egress(user: str, name: str) -> wire.Egress:
        return mapping.egress(user, name, firewall.egress_of(context, user, name))

    @app.patch(f"{BASE}/egress", responses=errors(404, 422))
    def set_egress(
        user: str, name: str, request: wire.SetEgress, principal: Caller, actor: Actor = "unknown"
    ) -> wire.EgressChanged:
        # A member's own change stays within the ceiling an admin set for them.
        change = firewall.set_egress(
            context, actor, user, name, request.egress, within_ceiling=not principal.is_admin
        )
        return mapping.egress_changed(change)
