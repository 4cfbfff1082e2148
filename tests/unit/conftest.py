"""Unit test fixtures: a migrated state database in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.store.database import Database
from tests.unit.fakes import FakeContext, fake_context
from tests.unit.served import CONFIG, world


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A new state database, migrated to the latest version; closed after the test."""
    database = Database(tmp_path / "state" / "cloche.db")
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def served_world(tmp_path: Path) -> Iterator[FakeContext]:
    """A FakeContext holding tests/unit/served.py's world: fixed times, ports and names."""
    with fake_context(tmp_path, CONFIG) as context:
        world(context)
        yield context
