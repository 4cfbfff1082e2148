"""Starting lxcfs: a mount left by a killed lxcfs is cleared before a new one starts."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cloche.host import lxd_daemon


def test_a_stale_lxcfs_mount_is_unmounted_then_lxcfs_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    states = iter(["stale", "mounted"])
    monkeypatch.setattr(lxd_daemon, "_lxcfs_state", lambda: next(states))
    commands: list[list[str]] = []
    monkeypatch.setattr(lxd_daemon, "run", lambda argv, check=True: commands.append(list(argv)))
    started: list[list[str]] = []
    monkeypatch.setattr(
        lxd_daemon, "start_service", lambda state_dir, name, argv: started.append(list(argv))
    )
    lxd_daemon._start_lxcfs(tmp_path)
    assert commands == [["umount", "-l", str(lxd_daemon.LXCFS_DIR)]]
    assert started == [["lxcfs", str(lxd_daemon.LXCFS_DIR)]]


def test_not_connected_means_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Path) -> bool:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    monkeypatch.setattr(Path, "exists", broken)
    assert lxd_daemon._lxcfs_state() == "stale"
    assert lxd_daemon.lxcfs_is_mounted() is False
