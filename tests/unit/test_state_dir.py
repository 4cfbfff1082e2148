"""The state directory is 0700 whoever creates it: host init, the daemon's start, or neither."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cloche.core import host
from cloche.core.context import HostEffects, open_context
from cloche.host import files
from cloche.model.config import ClocheConfig
from cloche.model.errors import HostFailure
from tests.unit.test_host_init_core import _Kernel, _Packages


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> object:
    # The umask of a shell without systemd's: mkdir alone would make 0755 directories.
    previous = os.umask(0o022)
    yield None
    os.umask(previous)


def test_a_new_state_directory_is_0700_with_its_parents_made(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "cloche"
    assert files.ensure_private_directory(state)
    assert _mode(state) == 0o700
    assert not files.ensure_private_directory(state)  # nothing to change the second time


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o711, 0o500])
def test_an_existing_state_directory_is_tightened(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "cloche"
    state.mkdir()
    state.chmod(mode)
    (state / "audit.log").write_text("kept\n")
    assert files.ensure_private_directory(state)
    assert _mode(state) == 0o700
    assert (state / "audit.log").read_text() == "kept\n"


def test_a_file_in_its_place_is_not_taken_for_it(tmp_path: Path) -> None:
    state = tmp_path / "cloche"
    state.write_text("not a directory")
    with pytest.raises(FileExistsError):
        files.ensure_private_directory(state)


def test_the_daemons_start_makes_and_tightens_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for _ in range(2):
        context = open_context(ClocheConfig(), state)
        context.database.close()
        assert _mode(state) == 0o700
        state.chmod(0o755)  # as an older cloche, or a hand-made directory, left it


class _NoLxd:
    def start(self, state_dir: Path) -> str:
        raise HostFailure("LXD stays down in this test.")


def test_host_init_tightens_it_before_anything_is_written_there(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    effects = HostEffects(packages=_Packages([]), kernel=_Kernel(), lxd_daemon=_NoLxd())  # type: ignore[arg-type]
    with pytest.raises(HostFailure, match="LXD stays down"):
        host.init_host(tmp_path / "config.yaml", state, host=effects)
    assert _mode(state) == 0o700
    assert [child.name for child in state.iterdir()] == []
