"""The backup adapters that need no restic: the catalog file and the files under backups/."""

from __future__ import annotations

from pathlib import Path

from cloche.host.backup_files import HostBackupFiles
from cloche.model.backups import BackupRecord
from cloche.store.backup_catalog import SqliteBackupCatalog


def _record(repository: str, backup_id: str, time: str) -> BackupRecord:
    return BackupRecord(repository, backup_id, "alice", "web", time, 10, 100, 1.0)


def test_the_catalog_keeps_records_per_state_directory(tmp_path: Path) -> None:
    catalog = SqliteBackupCatalog()
    catalog.add(tmp_path, _record("local", "bbbb2222", "2026-03-02"))
    catalog.add(tmp_path, _record("local", "aaaa1111", "2026-03-01"))
    catalog.add(tmp_path, _record("offsite", "cccc3333", "2026-03-03"))
    assert [r.id for r in catalog.list(tmp_path)] == ["aaaa1111", "bbbb2222", "cccc3333"]
    assert catalog.forget(tmp_path, "local", {"bbbb2222"}) == 1
    assert [r.id for r in SqliteBackupCatalog().list(tmp_path, "local")] == ["bbbb2222"]
    assert catalog.list(tmp_path / "other") == []


def test_a_restore_file_is_private_and_gone_after_the_block(tmp_path: Path) -> None:
    files = HostBackupFiles()
    with files.restore_file(tmp_path, "alice-web-") as path:
        assert path.name.startswith("alice-web-") and path.suffix == ".tar"
        assert path.parent.stat().st_mode & 0o777 == 0o700
        path.write_bytes(b"tarball")
        with files.open_archive(path) as stream:
            assert stream.read() == b"tarball"
    assert not path.exists()
    (path.parent / "left-over.tar").write_bytes(b"half")
    assert files.drop_restore_files(tmp_path) == 1
    assert files.drop_restore_files(tmp_path / "none") == 0


def test_the_schedule_stamp_keeps_the_time_it_was_given(tmp_path: Path) -> None:
    files = HostBackupFiles()
    assert files.last_round(tmp_path) is None
    files.stamp_round(tmp_path, 1_800_000_000.0)
    assert files.last_round(tmp_path) == 1_800_000_000.0
    assert not files.local_repository_exists(str(tmp_path / "repo"))
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "config").write_text("restic")
    assert files.local_repository_exists(str(tmp_path / "repo"))
