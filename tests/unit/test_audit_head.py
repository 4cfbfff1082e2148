"""The audit head's second copy in the state database: deleting the log and its head is caught."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloche.api.app import create_app
from cloche.cli import common, remote
from cloche.cli.main import app
from cloche.client import Client
from cloche.host.files import write_atomically
from cloche.model.audit import AuditEvent, ChainHead
from cloche.store.audit import AuditLog
from cloche.store.database import Database
from tests.unit.callers import header_caller
from tests.unit.fakes import FakeContext, TestClient, fake_context


def _event(number: int) -> AuditEvent:
    return AuditEvent(
        actor="alice",
        action="created environment",
        target=f"alice/env-{number}",
        outcome="succeeded",
    )


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with Database(tmp_path / "db" / "cloche.db") as database:
        database.migrate()
        yield database


def _log(tmp_path: Path, database: Database, count: int) -> AuditLog:
    log = AuditLog(tmp_path / "audit.log", write_atomically, database.audit_head)
    for number in range(1, count + 1):
        log.append(_event(number))
    return log


def test_every_append_records_the_head_in_the_database(tmp_path: Path, database: Database) -> None:
    assert database.audit_head.read() is None
    log = _log(tmp_path, database, 3)
    head = database.audit_head.read()
    assert head is not None and head.sequence == 3
    assert log.head_path.read_text().count(head.hash) == 1


def test_an_older_head_never_replaces_a_later_one(database: Database) -> None:
    database.audit_head.write(ChainHead(5, "f" * 64))
    database.audit_head.write(ChainHead(4, "e" * 64))
    assert database.audit_head.read() == ChainHead(5, "f" * 64)


def test_deleting_the_log_and_its_head_fails_verify(tmp_path: Path, database: Database) -> None:
    log = _log(tmp_path, database, 4)
    assert log.verify().ok
    log.path.unlink()
    log.head_path.unlink()
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 1)
    assert "missing but 4 events were written" in result.reason
    # A new event after the deletion does not start a clean log: its number keeps the gap.
    log.append(_event(5))
    result = log.verify()
    assert (result.ok, result.first_bad_line) == (False, 1)


def test_cutting_the_end_and_deleting_the_head_file_fails_verify(
    tmp_path: Path, database: Database
) -> None:
    log = _log(tmp_path, database, 4)
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text("".join(lines[:2]))
    log.head_path.unlink()
    result = log.verify()
    assert not result.ok
    assert "the log ends after 2 events but 4 were written" in result.reason


def test_without_a_copy_the_file_head_alone_still_counts(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log", write_atomically)
    log.append(_event(1))
    assert log.verify().ok


@pytest.fixture
def context(tmp_path: Path) -> Iterator[FakeContext]:
    with fake_context(tmp_path) as context:
        yield context


def test_cloche_audit_verify_exits_non_zero_in_one_sentence_after_both_are_deleted(
    context: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(1, 4):
        context.audit.append(_event(number))
    context.audit.path.unlink()
    context.audit.head_path.unlink()
    monkeypatch.setenv("NO_COLOR", "1")
    common.console.cache_clear()
    common.error_console.cache_clear()
    with TestClient(create_app(context, header_caller)) as http:
        monkeypatch.setattr(remote, "client_factory", lambda: Client(http=http))
        result = CliRunner().invoke(app, ["audit", "verify"])
    common.console.cache_clear()
    common.error_console.cache_clear()
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert message.startswith("audit log tampered: line 1: the log ")
    assert message.endswith("missing but 3 events were written to it; restore it from a backup.")
    assert message.count(". ") == 0


def test_a_new_log_started_on_purpose_verifies(tmp_path: Path, database: Database) -> None:
    # The procedure docs/operations.md gives: both files aside, and the copy cleared.
    log = _log(tmp_path, database, 2)
    log.path.rename(tmp_path / "audit.log.old")
    log.head_path.rename(tmp_path / "audit.log.head.old")
    with database.engine.transaction(write=True) as connection:
        connection.execute("DELETE FROM audit_head")
    log.append(_event(1))
    result = log.verify()
    assert (result.ok, result.count) == (True, 1)
