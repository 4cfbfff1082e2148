"""host.caddy_home: Caddy's home beside the state dir, the legacy move, its socket dir and user."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cloche.host import accounts, caddy, caddy_home
from cloche.model.errors import HostFailure

# The test's own ids stand for the caddy user's: chown to them works without root.
IDS = (os.getuid(), os.getgid())


def _config(routes: int) -> dict[str, Any]:
    config = caddy.minimal_config()
    route = {"handle": [{"handler": "static_response"}]}
    config["apps"] = {"http": {"servers": {"a": {"routes": [route] * routes}, "b": {}}}}
    return config


def test_caddys_home_is_the_state_dirs_sibling(tmp_path: Path) -> None:
    # The state dir is 0700 root's; the caddy user could not enter a home inside it.
    state = tmp_path / "cloche"
    assert caddy_home.caddy_dir(state) == tmp_path / "cloche-caddy"
    assert caddy_home.caddy_dir(Path("/var/lib/cloche")) == Path("/var/lib/cloche-caddy")
    assert caddy_home.config_path(state) == tmp_path / "cloche-caddy" / "config.json"
    assert caddy_home.legacy_caddy_dir(state) == state / "caddy"
    assert caddy_home.root_certificate_path(state) == (
        tmp_path / "cloche-caddy/data/caddy/pki/authorities/local/root.crt"
    )
    assert set(caddy_home.caddy_environment(state)) == {"HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"}


def test_prepare_keeps_saved_routes_and_fixes_only_the_admin_block(tmp_path: Path) -> None:
    saved = _config(2)
    saved["admin"] = {"listen": "127.0.0.1:2019"}
    caddy_home.config_path(tmp_path).parent.mkdir(parents=True)
    caddy_home.config_path(tmp_path).write_text(json.dumps(saved))
    caddy._prepare_files(tmp_path, caddy.ADMIN_LISTEN, IDS, move=False)
    assert json.loads(caddy_home.config_path(tmp_path).read_text()) == _config(2)
    home = caddy_home.caddy_dir(tmp_path)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home.stat().st_uid, home.stat().st_gid) == IDS


def test_prepare_writes_the_minimal_config_when_there_is_none(tmp_path: Path) -> None:
    caddy._prepare_files(tmp_path, caddy.ADMIN_LISTEN, IDS, move=False)
    written = json.loads(caddy_home.config_path(tmp_path).read_text())
    assert written == {
        "admin": {"listen": "unix//run/cloche-caddy/admin.sock", "config": {"persist": False}}
    }
    assert stat.S_IMODE(caddy_home.config_path(tmp_path).stat().st_mode) == 0o640


def test_prepare_moves_the_legacy_files_once_and_keeps_the_routes(tmp_path: Path) -> None:
    state = tmp_path / "cloche"
    legacy = caddy_home.legacy_caddy_dir(state)
    (legacy / "data" / "caddy" / "pki").mkdir(parents=True)
    (legacy / "data" / "caddy" / "pki" / "root.key").write_text("key")
    old = _config(1)
    old["admin"] = {"listen": "127.0.0.1:2019", "config": {"persist": False}}
    (legacy / "config.json").write_text(json.dumps(old))
    caddy._prepare_files(state, caddy.ADMIN_LISTEN, IDS, move=True)
    home = caddy_home.caddy_dir(state)
    assert (home / "data" / "caddy" / "pki" / "root.key").read_text() == "key"
    assert json.loads(caddy_home.config_path(state).read_text()) == _config(1)
    assert not legacy.exists()
    # Run again (no legacy dir left): nothing changes.
    caddy._prepare_files(state, caddy.ADMIN_LISTEN, IDS, move=True)
    assert json.loads(caddy_home.config_path(state).read_text()) == _config(1)


def test_prepare_never_overwrites_what_the_new_home_holds(tmp_path: Path) -> None:
    state = tmp_path / "cloche"
    (caddy_home.legacy_caddy_dir(state) / "data").mkdir(parents=True)
    (caddy_home.legacy_caddy_dir(state) / "data" / "old").write_text("old")
    (caddy_home.caddy_dir(state) / "data").mkdir(parents=True)
    caddy._prepare_files(state, caddy.ADMIN_LISTEN, IDS, move=True)
    assert not (caddy_home.caddy_dir(state) / "data" / "old").exists()
    assert (caddy_home.legacy_caddy_dir(state) / "data" / "old").read_text() == "old"


def test_legacy_files_stay_while_caddy_may_run(tmp_path: Path) -> None:
    state = tmp_path / "cloche"
    caddy_home.legacy_caddy_dir(state).mkdir(parents=True)
    caddy._prepare_files(state, caddy.ADMIN_LISTEN, IDS, move=False)
    assert caddy_home.legacy_caddy_dir(state).is_dir()


def test_the_socket_directory_is_private_and_the_stale_socket_goes(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "cloche-caddy"
    directory.mkdir(parents=True)
    (directory / "admin.sock").write_text("")
    caddy_home.prepare_socket_directory(f"unix/{directory}/admin.sock", IDS)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert (directory.stat().st_uid, directory.stat().st_gid) == IDS
    assert not (directory / "admin.sock").exists()


def test_a_shared_socket_directory_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "other").write_text("")
    os.chmod(tmp_path, 0o755)
    with pytest.raises(HostFailure, match="holds more than Caddy's admin socket"):
        caddy_home.prepare_socket_directory(f"unix/{tmp_path}/admin.sock", IDS)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_background_caddy_drops_to_its_user_with_the_bind_capability_only() -> None:
    assert caddy_home.as_caddy_user(["/usr/bin/caddy", "run"], (999, 995)) == [
        "setpriv",
        "--reuid=999",
        "--regid=995",
        "--clear-groups",
        "--inh-caps=-all,+net_bind_service",
        "--ambient-caps=-all,+net_bind_service",
        "--bounding-set=-all,+net_bind_service",
        "--no-new-privs",
        "--",
        "/usr/bin/caddy",
        "run",
    ]


def test_process_uid_reads_the_real_uid() -> None:
    assert caddy_home.process_uid(os.getpid()) == os.getuid()
    assert caddy_home.process_uid(2**22 + 12345) is None


def test_a_missing_caddy_user_is_created_as_a_system_user_without_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(accounts, "run", lambda argv: commands.append(list(argv)))
    monkeypatch.setattr(accounts.pwd, "getpwnam", _no_such_user)
    assert accounts.ensure_system_user("caddy", tmp_path / "home") is True
    assert commands == [
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            str(tmp_path / "home"),
            "--shell",
            "/usr/sbin/nologin",
            "caddy",
        ]
    ]
    assert accounts.user_ids("caddy") is None


def _no_such_user(name: str) -> Any:
    raise KeyError(name)
