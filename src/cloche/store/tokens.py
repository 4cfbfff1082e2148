"""API tokens (model/tokens.py): one row each, the secret kept only as its hash."""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from cloche.model.names import no_such_token
from cloche.model.tokens import TokenRecord
from cloche.store.engine import Engine, one_row, time_text
from cloche.store.users import require_user


def _token(row: sqlite3.Row) -> TokenRecord:
    environments = row["environments"]
    return TokenRecord(
        id=row["id"],
        user=row["user"],
        name=row["name"],
        scopes=frozenset(json.loads(row["scopes"])),
        environments=None if environments is None else frozenset(json.loads(environments)),
        created=datetime.fromisoformat(row["created"]),
        expires=datetime.fromisoformat(row["expires"]),
        last_used=datetime.fromisoformat(row["last_used"]) if row["last_used"] else None,
        revoked=bool(row["revoked"]),
    )


class TokenStore:
    """The tokens table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, token: TokenRecord, secret_hash: str) -> TokenRecord:
        """Record a new token of an existing user."""
        with self._engine.transaction(write=True) as connection:
            require_user(connection, token.user)
            connection.execute(
                "INSERT INTO tokens (id, user, name, scopes, environments, secret_hash, created, "
                "expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    token.user,
                    token.name,
                    json.dumps(sorted(token.scopes)),
                    None if token.environments is None else json.dumps(sorted(token.environments)),
                    secret_hash,
                    time_text(token.created),
                    time_text(token.expires),
                ),
            )
        return token

    def get(self, token_id: str) -> TokenRecord:
        """The token with this id; NotFound if there is none."""
        with self._engine.transaction(write=False) as connection:
            query = "SELECT * FROM tokens WHERE id = ?"
            return _token(one_row(connection, query, (token_id,), no_such_token(token_id)))

    def by_hash(self, secret_hash: str) -> TokenRecord | None:
        """The token whose secret has this hash, or None."""
        with self._engine.transaction(write=False) as connection:
            row = connection.execute(
                "SELECT * FROM tokens WHERE secret_hash = ?", (secret_hash,)
            ).fetchone()
        return _token(row) if row is not None else None

    def list(self, user: str | None = None) -> builtins.list[TokenRecord]:
        """Every token (of one user when given), by user and creation."""
        with self._engine.transaction(write=False) as connection:
            if user is None:
                rows = connection.execute("SELECT * FROM tokens ORDER BY user, created").fetchall()
            else:
                require_user(connection, user)
                rows = connection.execute(
                    "SELECT * FROM tokens WHERE user = ? ORDER BY created", (user,)
                ).fetchall()
        return [_token(row) for row in rows]

    def revoke(self, token_id: str) -> TokenRecord:
        """Mark a token revoked (kept, so the audit log's ids stay explained)."""
        with self._engine.transaction(write=True) as connection:
            one_row(
                connection,
                "SELECT id FROM tokens WHERE id = ?",
                (token_id,),
                no_such_token(token_id),
            )
            connection.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,))
            row = connection.execute("SELECT * FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return _token(row)

    def touch(self, token_id: str, at: datetime) -> None:
        """Note the token's latest use."""
        with self._engine.transaction(write=True) as connection:
            connection.execute(
                "UPDATE tokens SET last_used = ? WHERE id = ?", (time_text(at), token_id)
            )

    def add_environments(self, token_id: str, names: Iterable[str]) -> None:
        """Widen an environment-limited token to environments it created itself."""
        with self._engine.transaction(write=True) as connection:
            row = connection.execute(
                "SELECT environments FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
            if row is None or row["environments"] is None:
                return
            widened = sorted({*json.loads(row["environments"]), *names})
            connection.execute(
                "UPDATE tokens SET environments = ? WHERE id = ?", (json.dumps(widened), token_id)
            )
