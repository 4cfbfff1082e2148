"""Published routes (model/routes.py): an endpoint belongs to one environment at most."""

from __future__ import annotations

import builtins
import sqlite3
from datetime import datetime

from cloche.model.records import RouteRecord
from cloche.store.engine import Engine, one_row, refuse_taken, time_text
from cloche.store.environments import require_environment


def _route(row: sqlite3.Row) -> RouteRecord:
    return RouteRecord(
        user=row["user"],
        name=row["name"],
        spec=row["spec"],
        endpoint=row["endpoint"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _published_by(endpoint: str, user: str, owner: sqlite3.Row) -> str:
    # Another tenant's environment names are theirs to know, not the caller's.
    holder = f"{owner['user']}/{owner['name']}" if owner["user"] == user else "another user"
    return (
        f"{endpoint} is already published by {holder} (as {owner['spec']}); "
        "unpublish it there first or choose another port or domain."
    )


class RouteStore:
    """The routes table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, user: str, name: str, spec: str, endpoint: str) -> RouteRecord:
        """Store a published route; Conflict when its endpoint is taken, NotFound without env."""
        route = RouteRecord(
            user=user, name=name, spec=spec, endpoint=endpoint, created_at=self._engine.clock()
        )
        with self._engine.transaction(write=True) as connection:
            require_environment(connection, user, name)
            refuse_taken(
                connection,
                "SELECT user, name, spec FROM routes WHERE endpoint = ?",
                (endpoint,),
                lambda owner: _published_by(endpoint, user, owner),
            )
            connection.execute(
                "INSERT INTO routes (user, name, spec, endpoint, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (user, name, spec, endpoint, time_text(route.created_at)),
            )
        return route

    def remove(self, user: str, name: str, spec: str) -> RouteRecord:
        """Forget one route of user/name; NotFound when it is not published there."""
        with self._engine.transaction(write=True) as connection:
            row = one_row(
                connection,
                "SELECT * FROM routes WHERE user = ? AND name = ? AND spec = ?",
                (user, name, spec),
                f"{spec} is not published by {user}/{name}; "
                f"'cloche routes {user}/{name}' lists what is.",
            )
            connection.execute(
                "DELETE FROM routes WHERE user = ? AND name = ? AND spec = ?", (user, name, spec)
            )
        return _route(row)

    def list(self, user: str | None = None, name: str | None = None) -> builtins.list[RouteRecord]:
        """Published routes, of one user or one environment when given, in a stable order."""
        query, parameters = "SELECT * FROM routes", []
        if user is not None:
            query += " WHERE user = ?"
            parameters.append(user)
            if name is not None:
                query += " AND name = ?"
                parameters.append(name)
        with self._engine.transaction(write=False) as connection:
            rows = connection.execute(query + " ORDER BY user, name, spec", parameters).fetchall()
        return [_route(row) for row in rows]
