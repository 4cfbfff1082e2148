"""Brute-force bans (model/bans.py) and the recent failed SSH connections they are counted from."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from cloche.model.bans import Ban, Failure
from cloche.store.engine import Engine, one_row, time_text


def _ban(row: sqlite3.Row) -> Ban:
    return Ban(
        address=row["address"],
        until=datetime.fromisoformat(row["until"]),
        failures=row["failures"],
        created=datetime.fromisoformat(row["created"]),
    )


class BanStore:
    """The bans and ssh_failures tables."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_outcomes(self, outcomes: Iterable[tuple[str, int, bool]], at: datetime) -> None:
        """Note failed connections (address, port, True) and forgive accepted ones (False).

        A connection counts once whatever it tried, from its first failure.
        """
        with self._engine.transaction(write=True) as connection:
            for address, port, failed in outcomes:
                if failed:
                    connection.execute(
                        "INSERT OR IGNORE INTO ssh_failures (address, port, at) VALUES (?, ?, ?)",
                        (address, port, time_text(at)),
                    )
                else:
                    connection.execute(
                        "DELETE FROM ssh_failures WHERE address = ? AND port = ?", (address, port)
                    )

    def failures(self, since: datetime) -> builtins.list[Failure]:
        """Failed connections after since, oldest first."""
        with self._engine.transaction(write=False) as connection:
            rows = connection.execute(
                "SELECT address, at FROM ssh_failures WHERE at > ? ORDER BY at, address, port",
                (time_text(since),),
            ).fetchall()
        return [Failure(row["address"], datetime.fromisoformat(row["at"])) for row in rows]

    def forget_failures(self, *, before: datetime | None = None, address: str | None = None) -> int:
        """Forget failures older than before, or all of address's; return how many."""
        query, parameters = "DELETE FROM ssh_failures WHERE 1", []
        if before is not None:
            query += " AND at <= ?"
            parameters.append(time_text(before))
        if address is not None:
            query += " AND address = ?"
            parameters.append(address)
        with self._engine.transaction(write=True) as connection:
            return connection.execute(query, parameters).rowcount

    def change(self, add: Iterable[Ban], drop: Iterable[str]) -> None:
        """Drop the bans of these addresses, then add (or renew) these bans, in one transaction.

        A banned address's failures are forgotten: they were what the ban answered.
        """
        with self._engine.transaction(write=True) as connection:
            for address in drop:
                connection.execute("DELETE FROM bans WHERE address = ?", (address,))
            for ban in add:
                connection.execute(
                    "INSERT INTO bans (address, until, failures, created) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (address) DO UPDATE SET until = excluded.until, "
                    "failures = excluded.failures, created = excluded.created",
                    (ban.address, time_text(ban.until), ban.failures, time_text(ban.created)),
                )
                connection.execute("DELETE FROM ssh_failures WHERE address = ?", (ban.address,))

    def remove(self, address: str) -> Ban:
        """Lift the ban of address and forget its failures; NotFound when it is not banned."""
        with self._engine.transaction(write=True) as connection:
            row = one_row(
                connection,
                "SELECT * FROM bans WHERE address = ?",
                (address,),
                f"{address} is not banned; 'cloche host bans' lists the addresses that are.",
            )
            connection.execute("DELETE FROM bans WHERE address = ?", (address,))
            connection.execute("DELETE FROM ssh_failures WHERE address = ?", (address,))
        return _ban(row)

    def list(self) -> builtins.list[Ban]:
        """Every stored ban (run-out ones too, until dropped), by address."""
        with self._engine.transaction(write=False) as connection:
            rows = connection.execute("SELECT * FROM bans ORDER BY address").fetchall()
        return [_ban(row) for row in rows]
