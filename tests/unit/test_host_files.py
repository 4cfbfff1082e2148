"""The one atomic file write: old or new content, never half; synced file, then directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cloche.host import files


def test_write_replaces_the_file_with_its_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "state.json"
    files.write_atomically(path, "one\n")
    files.write_atomically(path, b"two\n", mode=0o600)
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [child.name for child in path.parent.iterdir()] == ["state.json"]


def test_the_file_is_synced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        steps.append("directory" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file")
        real_fsync(descriptor)

    def replace(source: str, target: Path) -> None:
        steps.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_atomically(tmp_path / "state.json", "x")
    assert steps == ["file", "rename", "directory"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")

    def refuse(source: str, target: Path) -> None:
        raise OSError("no space left")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="no space"):
        files.write_atomically(path, "new")
    assert path.read_text() == "old"
    assert [child.name for child in tmp_path.iterdir()] == ["state.json"]


def test_restore_puts_back_or_removes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    previous = files.read_text_or_none(path)
    files.write_atomically(path, "new")
    files.restore(path, previous)
    assert not path.exists()
    files.write_atomically(path, "old")
    files.write_atomically(path, "new")
    files.restore(path, "old")
    assert path.read_text() == "old"
