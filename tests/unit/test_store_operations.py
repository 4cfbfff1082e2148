"""The operation store: progress, the end of an operation, listing, and the restart cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloche.model.errors import Conflict, Invalid, NotFound
from cloche.store.database import Database


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_operations_run_report_progress_and_finish(tmp_path: Path) -> None:
    with Database(tmp_path / "cloche.db", clock=_Clock()) as database:
        database.migrate()
        created = database.operations.create("create environment", "alice/web")
        assert created.status == "running" and not created.finished
        assert created.finished_at is None and created.error is None
        assert len(created.id) == 36
        progress = database.operations.update(created.id, progress="starting")
        assert progress.progress == "starting" and progress.status == "running"
        done = database.operations.update(created.id, status="succeeded", progress="ready")
        assert done.finished and done.finished_at is not None
        assert done.finished_at > done.created_at
        assert database.operations.get(created.id) == done
        with pytest.raises(Conflict, match="already succeeded"):
            database.operations.update(created.id, status="failed")

        failed = database.operations.create("delete environment", "alice/api")
        failed = database.operations.update(failed.id, status="failed", error="LXD said no.")
        assert failed.error == "LXD said no."
        running = database.operations.create("create environment", "bob/web")

        assert [op.id for op in database.operations.list()] == [running.id, failed.id, done.id]
        assert [op.id for op in database.operations.list(limit=1)] == [running.id]
        assert [op.id for op in database.operations.list(status="failed")] == [failed.id]
        assert [op.id for op in database.operations.list(target="alice/web")] == [done.id]


def test_operation_errors_and_restart_cleanup(database: Database) -> None:
    with pytest.raises(NotFound):
        database.operations.get("no-such-id")
    with pytest.raises(NotFound):
        database.operations.update("no-such-id", progress="x")
    with pytest.raises(Invalid):
        database.operations.create("", "alice/web")
    first = database.operations.create("create environment", "alice/web")
    second = database.operations.create("create environment", "alice/api")
    database.operations.update(second.id, status="succeeded")
    assert database.operations.fail_unfinished("The daemon restarted; retry.") == 1
    lost = database.operations.get(first.id)
    assert (lost.status, lost.error) == ("failed", "The daemon restarted; retry.")
    assert lost.finished_at is not None
    assert database.operations.get(second.id).status == "succeeded"
