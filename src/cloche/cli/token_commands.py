"""'cloche token ...': API tokens (bearer secrets) for users and their agents."""

from __future__ import annotations

from typing import Annotated

import typer

from cloche.cli import remote
from cloche.cli.common import console, handle_errors
from cloche.cli.remote import JsonOption

token_app = typer.Typer(help="API tokens: scoped, expiring, revocable.", no_args_is_help=True)


@token_app.command("create")
@handle_errors
def token_create(
    user: Annotated[str, typer.Option("--user", help="Whose token (a member: their own).")],
    name: Annotated[str, typer.Option(help="What it is for, shown in 'token list'.")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="read, write, exec or admin; repeat it (default read, write, exec)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="Limit it to this environment of the user; repeat it."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime: 12h, 30d, 4w (default 90d).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print its secret, this once (only its hash is kept)."""
    with remote.client() as client:
        made = client.tokens.create(
            user, name=name, scopes=scope, environments=env, expires=expires
        )
    if as_json:
        remote.print_json(made)
        return
    token = made.token
    console().print(
        f"created token {token.id} for {token.user} ({', '.join(token.scopes)}), "
        f"expires {token.expires}",
        highlight=False,
    )
    typer.echo(made.secret)


@token_app.command("list")
@handle_errors
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The tokens you may see: id, user, name, scopes, environments, expiry, last use."""
    with remote.client() as client:
        tokens = client.tokens.list(user)
    if as_json:
        remote.print_json(tokens)
        return
    # Imported here so that every other command starts without loading rich's tables.
    from rich.table import Table

    table = Table("id", "user", "name", "scopes", "envs", "expires", "last used", "revoked")
    for token in tokens:
        table.add_row(
            token.id,
            token.user,
            token.name,
            ",".join(token.scopes),
            "all" if token.environments is None else ",".join(token.environments),
            token.expires,
            token.last_used or "-",
            "yes" if token.revoked else "no",
        )
    console().print(table)


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: str) -> None:
    """Revoke a token: its next call is refused (401)."""
    with remote.client() as client:
        token = client.tokens.revoke(token_id)
    console().print(f"revoked token {token.id} of {token.user}", highlight=False)
