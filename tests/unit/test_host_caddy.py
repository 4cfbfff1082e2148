"""host.caddy without a real Caddy: admin socket answers (mocked transport), starting decisions."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloche.host import caddy, caddy_home
from cloche.model.errors import HostFailure, Invalid
from cloche.model.process import Completed
from cloche.render.caddy import route_count

Handler = Callable[[httpx.Request], httpx.Response]
# The test's own ids stand for the caddy user's: chown to them works without root.
IDS = (os.getuid(), os.getgid())


@pytest.fixture(autouse=True)
def _no_caddy_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caddy, "user_ids", lambda name: IDS)


def _answering(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> list[httpx.Request]:
    """Route host.caddy's admin requests to handler; return the requests it saw."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    def client(admin_listen: str, timeout: float) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(record), base_url="http://localhost")

    monkeypatch.setattr(caddy, "_client", client)
    return seen


def _config(routes: int) -> dict[str, Any]:
    config = caddy.minimal_config()
    route = {"handle": [{"handler": "static_response"}]}
    config["apps"] = {"http": {"servers": {"a": {"routes": [route] * routes}, "b": {}}}}
    return config


def test_the_admin_api_is_a_private_unix_socket_by_default() -> None:
    assert caddy.ADMIN_LISTEN == "unix//run/cloche-caddy/admin.sock"
    assert caddy_home.socket_path(caddy.ADMIN_LISTEN) == Path("/run/cloche-caddy/admin.sock")
    assert caddy.minimal_config()["admin"]["listen"] == caddy.ADMIN_LISTEN


def test_route_count_adds_up_every_server() -> None:
    assert route_count(_config(3)) == 3
    assert route_count(caddy.minimal_config()) == 0
    assert route_count({}) == 0


def test_current_config_reads_null_as_empty_and_errors_as_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(
        [
            httpx.Response(200, content=b"null"),
            httpx.Response(200, json=_config(1)),
            httpx.Response(403, json={"error": "host not allowed: example.com"}),
            httpx.Response(200, content=b"<html>"),
        ]
    )
    _answering(monkeypatch, lambda request: next(answers))
    assert caddy.current_config() == {}
    assert caddy.current_config() == _config(1)
    assert caddy.current_config() is None
    assert caddy.current_config() is None


def test_a_missing_admin_socket_does_not_answer(tmp_path: Path) -> None:
    listen = f"unix/{tmp_path}/none.sock"
    assert caddy.current_config(listen) is None
    assert caddy.caddy_answers(listen) is False


@pytest.mark.parametrize("listen", ["127.0.0.1:2019", "localhost:2019", "[::1]:2019"])
def test_a_tcp_admin_address_is_refused(listen: str) -> None:
    with pytest.raises(Invalid, match="is not unix/PATH"):
        caddy.current_config(listen)


def test_a_socket_another_program_holds_is_told_from_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.bind(str(path))
        holder.listen()
        assert caddy._other_program_listens(f"unix/{path}")
    assert path.exists()  # closed, the file stays behind: a stale socket
    assert not caddy._other_program_listens(f"unix/{path}")


def test_load_posts_the_config_and_keeps_a_private_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _answering(monkeypatch, lambda request: httpx.Response(200))
    caddy.load_config(_config(2), tmp_path)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/load")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == _config(2)
    saved = caddy_home.config_path(tmp_path)
    assert json.loads(saved.read_text()) == _config(2)
    # cloche's, and readable by the caddy group: Caddy restarts from it as the caddy user.
    assert stat.S_IMODE(saved.stat().st_mode) == 0o640
    assert (saved.stat().st_uid, saved.stat().st_gid) == (os.geteuid(), IDS[1])
    assert caddy.saved_config(tmp_path) == _config(2)


def test_no_saved_config_before_a_load_or_when_the_file_is_not_json(tmp_path: Path) -> None:
    assert caddy.saved_config(tmp_path) is None
    caddy_home.config_path(tmp_path).parent.mkdir(parents=True)
    caddy_home.config_path(tmp_path).write_text("{not json")
    assert caddy.saved_config(tmp_path) is None


def test_a_refused_config_is_one_sentence_and_not_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    error = (
        "loading config: loading new config: loading http app module: provision http: "
        "server s: setting up route handlers: route 0: loading handler modules: position 0: "
        "loading module 'nope': unknown module: http.handlers.nope"
    )
    _answering(monkeypatch, lambda request: httpx.Response(400, json={"error": error}))
    with pytest.raises(HostFailure) as caught:
        caddy.load_config(_config(1), tmp_path)
    message = str(caught.value)
    assert message.startswith(
        "Caddy refused the new config and still serves the previous one: loading http app module"
    )
    assert "unknown module: http.handlers.nope; fix what it names" in message
    assert "loading config:" not in message
    assert not caddy_home.config_path(tmp_path).exists()


def test_a_very_long_refusal_is_trimmed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _answering(monkeypatch, lambda request: httpx.Response(400, json={"error": "x" * 5000}))
    with pytest.raises(HostFailure) as caught:
        caddy.load_config(_config(1), tmp_path)
    assert len(str(caught.value)) < 400


def test_a_silent_caddy_says_to_run_host_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    _answering(monkeypatch, refuse)
    with pytest.raises(HostFailure, match=r"does not answer .* run 'cloche host init'"):
        caddy.load_config(_config(1), tmp_path)


@pytest.mark.parametrize("admin", [None, {"listen": "127.0.0.1:2019"}, "unix//run/other.sock"])
def test_a_config_that_would_move_the_admin_api_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, admin: object
) -> None:
    seen = _answering(monkeypatch, lambda request: httpx.Response(200))
    config: dict[str, Any] = {"apps": {}}
    if admin is not None:
        config["admin"] = admin
    with pytest.raises(Invalid, match=r"must keep the admin API on unix//run/cloche-caddy/admin"):
        caddy.load_config(config, tmp_path)
    assert seen == []


class _Host:
    """Fakes for the host around ensure_caddy: systemd units, processes, the admin socket."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, systemd: bool) -> None:
        self.commands: list[list[str]] = []
        self.ok_commands: set[tuple[str, ...]] = set()
        self.answers = False
        self.started: list[list[str]] = []
        self.stopped: list[str] = []
        self.socket_directories: list[str] = []
        self.pid: int | None = None
        self.created_user = False
        # The checks for an installed Caddy must pass on machines without one.
        monkeypatch.setattr(caddy, "CADDY_BINARY", sys.executable)
        monkeypatch.setattr(caddy, "systemd_is_running", lambda: systemd)
        monkeypatch.setattr(caddy, "run", self.run)
        monkeypatch.setattr(caddy, "caddy_answers", lambda admin_listen: self.answers)
        monkeypatch.setattr(caddy, "_other_program_listens", lambda admin_listen: False)
        monkeypatch.setattr(caddy, "_our_pid", lambda state_dir: self.pid)
        monkeypatch.setattr(caddy.services, "start_service", self.start)
        monkeypatch.setattr(caddy.services, "stop_service", self.stop)
        monkeypatch.setattr(caddy, "_wait_until_answering", lambda *args: None)
        monkeypatch.setattr(caddy_home, "caddy_ids", lambda state_dir: (IDS, self.created_user))
        # Never the host's /run/cloche-caddy.
        monkeypatch.setattr(
            caddy_home,
            "prepare_socket_directory",
            lambda listen, ids: self.socket_directories.append(listen),
        )

    def run(self, argv: list[str], check: bool = True) -> Completed:
        self.commands.append(list(argv))
        ok = tuple(argv) in self.ok_commands
        if tuple(argv[:2]) == ("systemctl", "start"):
            self.answers = True
        return Completed(tuple(argv), 0 if ok or check else 1, "", "")

    def start(self, state_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> int:
        self.started.append(argv)
        assert env["XDG_DATA_HOME"] == str(caddy_home.caddy_dir(state_dir) / "data")
        self.answers = True
        return 4242

    def stop(self, state_dir: Path, name: str) -> bool:
        self.stopped.append(name)
        self.pid, self.answers = None, False
        return True


def test_background_start_runs_caddy_as_its_user_on_the_saved_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=False)
    assert caddy.ensure_caddy(tmp_path) == "started (background)"
    command = [caddy.CADDY_BINARY, "run", "--config", str(caddy_home.config_path(tmp_path))]
    assert host.started == [caddy_home.as_caddy_user(command, IDS)]
    assert host.socket_directories == [caddy.ADMIN_LISTEN]


def test_a_created_caddy_user_is_noted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host = _Host(monkeypatch, systemd=False)
    host.created_user = True
    assert caddy.ensure_caddy(tmp_path) == "started (background); created the system user caddy"


def test_a_background_caddy_left_running_as_root_is_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=False)
    host.pid = os.getpid()  # a process that is not the caddy user's
    monkeypatch.setattr(caddy_home, "process_uid", lambda pid: IDS[0] + 1)
    assert caddy.ensure_caddy(tmp_path) == "started (background)"
    assert host.stopped == [caddy.CADDY_SERVICE] and len(host.started) == 1


def test_a_background_caddy_running_as_its_user_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=False)
    host.pid, host.answers = os.getpid(), True
    monkeypatch.setattr(caddy_home, "process_uid", lambda pid: IDS[0])
    assert caddy.ensure_caddy(tmp_path) == "already running"
    assert (host.stopped, host.started, host.socket_directories) == ([], [], [])


def test_background_start_refuses_to_start_beside_another_caddy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=False)
    host.answers = True
    with pytest.raises(HostFailure, match="Another Caddy, not started by cloche, answers on"):
        caddy.ensure_caddy(tmp_path)
    assert host.started == []


def test_systemd_disables_debians_caddy_and_starts_cloches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=True)
    host.ok_commands = {("systemctl", "is-enabled", "--quiet", "caddy.service")}
    unit_path = tmp_path / "cloche-caddy.service"
    monkeypatch.setattr(caddy, "UNIT_PATH", unit_path)
    how = caddy.ensure_caddy(tmp_path, unit_text="[Unit]\n")
    assert how == (
        "started (systemd); disabled Debian's caddy.service, which would hold ports 80 and 443"
    )
    assert unit_path.read_text() == "[Unit]\n"
    changing = [command for command in host.commands if "--quiet" not in command]
    assert changing == [
        ["systemctl", "disable", "--now", "caddy.service"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "cloche-caddy"],
        ["systemctl", "start", "cloche-caddy"],
    ]
    # systemd makes the socket's directory (RuntimeDirectory=), not cloche.
    assert host.socket_directories == []


def test_a_changed_unit_stops_caddy_before_moving_its_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=True)
    host.answers = True
    host.ok_commands = {
        ("systemctl", "is-enabled", "--quiet", "cloche-caddy"),
        ("systemctl", "is-active", "--quiet", "cloche-caddy"),
    }
    unit_path = tmp_path / "cloche-caddy.service"
    unit_path.write_text("[Service]\nUser=root\n")
    monkeypatch.setattr(caddy, "UNIT_PATH", unit_path)
    state = tmp_path / "cloche"
    caddy_home.legacy_caddy_dir(state).mkdir(parents=True)
    (caddy_home.legacy_caddy_dir(state) / "data").mkdir()
    assert caddy.ensure_caddy(state, unit_text="[Service]\nUser=caddy\n") == "restarted (systemd)"
    changing = [command for command in host.commands if "--quiet" not in command]
    assert changing == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "stop", "cloche-caddy"],
        ["systemctl", "start", "cloche-caddy"],
    ]
    assert (caddy_home.caddy_dir(state) / "data").is_dir()
    assert not caddy_home.legacy_caddy_dir(state).exists()


def test_systemd_keeps_a_running_unit_that_did_not_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=True)
    host.answers = True
    host.ok_commands = {
        ("systemctl", "is-enabled", "--quiet", "cloche-caddy"),
        ("systemctl", "is-active", "--quiet", "cloche-caddy"),
    }
    unit_path = tmp_path / "cloche-caddy.service"
    unit_path.write_text("[Unit]\n")
    monkeypatch.setattr(caddy, "UNIT_PATH", unit_path)
    assert caddy.ensure_caddy(tmp_path, unit_text="[Unit]\n") == "already running"
    assert all("--quiet" in command for command in host.commands)


def test_the_daemon_never_moves_files_under_an_installed_unit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Without unit_text the installed unit may be the old one, still on the legacy files.
    _Host(monkeypatch, systemd=True)
    unit_path = tmp_path / "cloche-caddy.service"
    unit_path.write_text("[Unit]\n")
    monkeypatch.setattr(caddy, "UNIT_PATH", unit_path)
    state = tmp_path / "cloche"
    caddy_home.legacy_caddy_dir(state).mkdir(parents=True)
    assert caddy.ensure_caddy(state) == "started (systemd)"
    assert caddy_home.legacy_caddy_dir(state).is_dir()


def test_systemd_without_an_installed_unit_says_to_run_host_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _Host(monkeypatch, systemd=True)
    monkeypatch.setattr(caddy, "UNIT_PATH", tmp_path / "missing.service")
    with pytest.raises(HostFailure, match="missing; run 'cloche host init'"):
        caddy.ensure_caddy(tmp_path)
