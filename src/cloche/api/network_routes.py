"""The network routes: an environment's egress policy (PATCH .../{user}/{name}/egress)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from cloche.api.schemas import Actor
from cloche.core import firewall
from cloche.core.context import Context

BASE = "/v1/environments/{user}/{name}"


class SetEgress(BaseModel):
    """PATCH .../egress: 'open', 'none' or 'allow:CIDR,CIDR'."""

    model_config = ConfigDict(extra="forbid")

    egress: str = Field(max_length=4000)


def register_network_routes(app: FastAPI, context: Context) -> None:
    """Add the network routes to app."""

    @app.get(f"{BASE}/egress")
    def egress(user: str, name: str) -> dict[str, Any]:
        return {"user": user, "name": name, "egress": firewall.egress_of(context, user, name)}

    @app.patch(f"{BASE}/egress")
    def set_egress(
        user: str, name: str, request: SetEgress, actor: Actor = "unknown"
    ) -> dict[str, Any]:
        return firewall.set_egress(context, actor, user, name, request.egress)
