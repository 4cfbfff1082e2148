"""API tokens: POST/GET /v1/tokens, DELETE /v1/tokens/{token_id}."""

from __future__ import annotations

from fastapi import FastAPI

from cloche import wire
from cloche.api import mapping
from cloche.api.authorization import Actor, Caller, ListedUser
from cloche.api.schemas import errors
from cloche.core import tokens
from cloche.core.context import Context


def register_token_routes(app: FastAPI, context: Context) -> None:
    """Add the /v1/tokens routes to app."""

    @app.post("/v1/tokens", status_code=201, responses=errors(404, 422))
    def create_token(request: wire.CreateToken, principal: Caller) -> wire.TokenCreated:
        made = tokens.create_token(
            context,
            principal,
            request.user,
            name=request.name,
            scopes=request.scopes,
            environments=request.environments,
            lifetime=request.expires,
        )
        return wire.TokenCreated(token=mapping.token(made.record), secret=made.secret)

    @app.get("/v1/tokens", responses=errors(404, 422))
    def list_tokens(user: ListedUser) -> list[wire.Token]:
        return [mapping.token(record) for record in tokens.list_tokens(context, user)]

    @app.delete("/v1/tokens/{token_id}", responses=errors(404, 422))
    def revoke_token(token_id: str, principal: Caller, actor: Actor = "unknown") -> wire.Token:
        owner = None if principal.is_admin else principal.user
        return mapping.token(tokens.revoke_token(context, actor, token_id, owner))
