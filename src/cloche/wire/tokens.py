"""API tokens on the wire: create (the secret once), list, revoke."""

from __future__ import annotations

from pydantic import Field

from cloche.wire.base import WireModel


class CreateToken(WireModel):
    """POST /v1/tokens: a token for user (a member: themselves), scopes, environments, lifetime."""

    user: str = Field(max_length=64)
    name: str = Field(default="", max_length=100)
    scopes: list[str] | None = Field(default=None, max_length=4)
    environments: list[str] | None = Field(default=None, max_length=500)
    expires: str | None = Field(default=None, max_length=10)


class Token(WireModel):
    """One token as `token list` shows it (never its secret)."""

    id: str
    user: str
    name: str
    scopes: list[str]
    environments: list[str] | None
    created: str
    expires: str
    last_used: str | None
    revoked: bool


class TokenCreated(WireModel):
    """POST /v1/tokens: the token, and its secret (shown this once, stored only as a hash)."""

    token: Token
    secret: str
