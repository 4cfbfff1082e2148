"""API tokens: create (the secret once), list, revoke."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import JsonValue

from cloche.client.connection import path_of
from cloche.client.resource import Resource, given
from cloche.wire import Token, TokenCreated


class Tokens(Resource):
    """/v1/tokens: bearer tokens for a user, scoped and optionally limited to environments."""

    def create(
        self,
        user: str,
        *,
        name: str = "",
        scopes: Sequence[str] | None = None,
        environments: Sequence[str] | None = None,
        expires: str | None = None,
    ) -> TokenCreated:
        """A new token of user; its secret is in the answer and nowhere else, ever."""
        body: dict[str, JsonValue] = given(
            user=user,
            name=name,
            scopes=None if scopes is None else list(scopes),
            environments=None if environments is None else list(environments),
            expires=expires,
        )
        return self._connection.fetch(TokenCreated, "POST", path_of("tokens"), body=body)

    def list(self, user: str | None = None) -> list[Token]:
        """The tokens the caller may see (of one user when given)."""
        params = {} if user is None else {"user": user}
        return self._connection.fetch_list(Token, path_of("tokens"), params=params)

    def revoke(self, token_id: str) -> Token:
        """Revoke a token at once: its next call is refused."""
        return self._connection.fetch(Token, "DELETE", path_of("tokens", token_id))
