"""API tokens: create (the secret shown once), list, revoke, and the principal a secret names."""

from __future__ import annotations

from dataclasses import dataclass

from cloche.core.audited import audited
from cloche.core.context import Context
from cloche.model.errors import Forbidden, Invalid, NotFound, Unauthenticated
from cloche.model.names import (
    check_environment_name,
    check_user_name,
    no_such_environment,
    no_such_token,
)
from cloche.model.principals import Principal
from cloche.model.tokens import (
    TokenRecord,
    check_grantable,
    new_secret,
    new_token_id,
    parse_lifetime,
    parse_scopes,
    secret_hash,
    token_id_of,
    usable,
)


@dataclass(frozen=True)
class NewToken:
    """A token just made, and its secret (never stored, never shown again)."""

    record: TokenRecord
    secret: str


def create_token(
    context: Context,
    creator: Principal,
    user: str,
    *,
    name: str = "",
    scopes: list[str] | None = None,
    environments: list[str] | None = None,
    lifetime: str | None = None,
) -> NewToken:
    """Make a token for user, never with more rights than its creator has."""
    granted = parse_scopes(scopes)
    limited = (
        None
        if environments is None
        else frozenset(check_environment_name(each) for each in environments)
    )
    with audited(context, creator.actor, "created token for user", user, {"name": name[:100]}):
        check_user_name(user)
        check_grantable(granted, creator.is_admin)
        if not granted <= creator.scopes:
            raise Forbidden("A token cannot create a token with scopes it does not have itself.")
        if creator.environments is not None:
            # A limited token's tokens stay within its own environments.
            limited = creator.environments if limited is None else limited
            outside = sorted(limited - creator.environments)
            if outside:
                raise NotFound(no_such_environment(user, outside[0]))
        if len(name) > 100 or any(not char.isprintable() for char in name):
            raise Invalid("A token name is one printable line of at most 100 characters.")
        now = context.host.clock.now()
        token_id = new_token_id()
        record = TokenRecord(
            id=token_id,
            user=user,
            name=name,
            scopes=granted,
            environments=limited,
            created=now,
            expires=now + parse_lifetime(lifetime),
            last_used=None,
            revoked=False,
        )
        secret = new_secret(token_id)
        context.database.tokens.add(record, secret_hash(secret))
    return NewToken(record, secret)


def list_tokens(context: Context, user: str | None) -> list[TokenRecord]:
    """Tokens (of one user when given)."""
    return context.database.tokens.list(None if user is None else check_user_name(user))


def revoke_token(context: Context, actor: str, token_id: str, owner: str | None) -> TokenRecord:
    """Revoke a token; owner (a member's own name) limits which one may be named."""
    with audited(context, actor, "revoked token", token_id):
        token = context.database.tokens.get(token_id)
        if owner is not None and token.user != owner:
            raise NotFound(no_such_token(token_id))  # the same answer as an unknown id
        return context.database.tokens.revoke(token_id)


def principal_of_secret(context: Context, secret: str, via: str) -> Principal:
    """The principal a bearer secret stands for; Unauthenticated for any secret that is not one."""
    refused = Unauthenticated(
        "The token is unknown, revoked or expired; create one with 'cloche token create'."
    )
    if token_id_of(secret) is None:
        raise refused
    token = context.database.tokens.by_hash(secret_hash(secret))
    now = context.host.clock.now()
    if token is None or not usable(token, now):
        raise refused
    user = context.database.users.get(token.user)
    context.database.tokens.touch(token.id, now)
    return Principal(
        name=user.name,
        role=user.role,
        user=user.name,
        via=f"{via} token {token.id}",
        scopes=token.scopes,
        environments=token.environments,
        token_id=token.id,
    )
