"""Unit test fixtures: a migrated state database in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.store.database import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A new state database, migrated to the latest version; closed after the test."""
    database = Database(tmp_path / "state" / "cloche.db")
    database.migrate()
    yield database
    database.close()
