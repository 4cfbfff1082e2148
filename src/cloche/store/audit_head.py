"""The audit log's head (sequence and hash of its last line), kept in the state database too.

The .head file beside the log notices lines cut from its end; this copy, in another file that
holds all of cloche's state, still knows how many events there were when both are deleted.
"""

from __future__ import annotations

from cloche.model.audit import ChainHead
from cloche.store.engine import Engine


class AuditHeadStore:
    """The one row of table audit_head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self) -> ChainHead | None:
        """The head last recorded, or None before the first event."""
        with self._engine.transaction(write=False) as connection:
            row = connection.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return None if row is None else ChainHead(int(row["seq"]), str(row["hash"]))

    def write(self, head: ChainHead) -> None:
        """Record head unless a later one is recorded (appends may race across processes)."""
        with self._engine.transaction(write=True) as connection:
            connection.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash "
                "WHERE excluded.seq >= audit_head.seq",
                (head.sequence, head.hash),
            )
