"""Long-running operations the API answered with an id: their progress and how they ended."""

from __future__ import annotations

import builtins
import dataclasses
import sqlite3
import uuid
from datetime import datetime

from cloche.model.errors import Conflict
from cloche.model.names import no_such_operation
from cloche.model.records import UNSET, OperationRecord, OperationStatus, Unset
from cloche.store.engine import Engine, changes, one_row, time_or_none, time_text


def _operation(row: sqlite3.Row) -> OperationRecord:
    return OperationRecord(
        id=row["id"],
        kind=row["kind"],
        target=row["target"],
        status=row["status"],
        progress=row["progress"],
        error=row["error"],
        created_at=datetime.fromisoformat(row["created_at"]),
        finished_at=time_or_none(row["finished_at"]),
    )


def _operation_row(operation: OperationRecord) -> dict[str, object]:
    row = dataclasses.asdict(operation)
    row["created_at"] = time_text(operation.created_at)
    row["finished_at"] = None if operation.finished_at is None else time_text(operation.finished_at)
    return row


def _require_operation(connection: sqlite3.Connection, operation_id: str) -> OperationRecord:
    return _operation(
        one_row(
            connection,
            "SELECT * FROM operations WHERE id = ?",
            (operation_id,),
            no_such_operation(operation_id),
        )
    )


class OperationStore:
    """The operations table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, kind: str, target: str, progress: str = "") -> OperationRecord:
        """Start tracking a running operation under a new random id."""
        operation = OperationRecord(
            id=str(uuid.uuid4()),
            kind=kind,
            target=target,
            status="running",
            progress=progress,
            error=None,
            created_at=self._engine.clock(),
            finished_at=None,
        )
        with self._engine.transaction(write=True) as connection:
            connection.execute(
                "INSERT INTO operations (id, kind, target, status, progress, error, created_at, "
                "finished_at) VALUES (:id, :kind, :target, :status, :progress, :error, "
                ":created_at, :finished_at)",
                _operation_row(operation),
            )
        return operation

    def update(
        self,
        operation_id: str,
        *,
        status: OperationStatus | Unset = UNSET,
        progress: str | Unset = UNSET,
        error: str | Unset | None = UNSET,
    ) -> OperationRecord:
        """Report progress or the end of an operation; Conflict once it has finished."""
        with self._engine.transaction(write=True) as connection:
            operation = _require_operation(connection, operation_id)
            if operation.finished:
                raise Conflict(
                    f"Operation {operation_id} already {operation.status}; start a new one."
                )
            operation = dataclasses.replace(
                operation, **changes(status=status, progress=progress, error=error)
            )
            if operation.finished:
                operation = dataclasses.replace(operation, finished_at=self._engine.clock())
            connection.execute(
                "UPDATE operations SET status = :status, progress = :progress, error = :error, "
                "finished_at = :finished_at WHERE id = :id",
                _operation_row(operation),
            )
            return operation

    def get(self, operation_id: str) -> OperationRecord:
        """The operation with this id; NotFound if there is none."""
        with self._engine.transaction(write=False) as connection:
            return _require_operation(connection, operation_id)

    def list(
        self,
        *,
        status: OperationStatus | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[OperationRecord]:
        """Operations, newest first, optionally only those with this status or target."""
        with self._engine.transaction(write=False) as connection:
            rows = connection.execute(
                "SELECT * FROM operations WHERE (:status IS NULL OR status = :status) "
                "AND (:target IS NULL OR target = :target) "
                "ORDER BY created_at DESC, rowid DESC LIMIT :limit",
                {"status": status, "target": target, "limit": -1 if limit is None else limit},
            ).fetchall()
        return [_operation(row) for row in rows]

    def fail_unfinished(self, error: str) -> int:
        """Mark every running operation failed (a restarted daemon lost them); return how many."""
        with self._engine.transaction(write=True) as connection:
            return connection.execute(
                "UPDATE operations SET status = 'failed', error = ?, finished_at = ? "
                "WHERE status = 'running'",
                (error, time_text(self._engine.clock())),
            ).rowcount
