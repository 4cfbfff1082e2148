"""host.caddy without a real Caddy: admin API answers (mocked transport), starting decisions."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloche.host import caddy
from cloche.model.errors import HostFailure, Invalid
from cloche.model.process import Completed
from cloche.render.caddy import route_count

Handler = Callable[[httpx.Request], httpx.Response]


def _answering(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> list[httpx.Request]:
    """Route host.caddy's admin requests to handler; return the requests it saw."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    def client(admin_listen: str, timeout: float) -> httpx.Client:
        return httpx.Client(
            transport=httpx.MockTransport(record), base_url=f"http://{admin_listen}"
        )

    monkeypatch.setattr(caddy, "_client", client)
    return seen


def _config(routes: int) -> dict[str, Any]:
    config = caddy.minimal_config()
    route = {"handle": [{"handler": "static_response"}]}
    config["apps"] = {"http": {"servers": {"a": {"routes": [route] * routes}, "b": {}}}}
    return config


def test_paths_keep_everything_under_the_state_dir(tmp_path: Path) -> None:
    assert caddy.caddy_dir(tmp_path) == tmp_path / "caddy"
    assert caddy.config_path(tmp_path) == tmp_path / "caddy" / "config.json"
    assert caddy.root_certificate_path(tmp_path) == (
        tmp_path / "caddy/data/caddy/pki/authorities/local/root.crt"
    )
    assert set(caddy.caddy_environment(tmp_path)) == {"HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"}


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


def test_a_closed_admin_port_does_not_answer() -> None:
    # Port 9 (discard) on loopback: nothing listens there in a test environment.
    assert caddy.current_config("127.0.0.1:9") is None
    assert caddy.caddy_answers("127.0.0.1:9") is False


def test_load_posts_the_config_and_keeps_a_private_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _answering(monkeypatch, lambda request: httpx.Response(200))
    caddy.load_config(_config(2), tmp_path)
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/load")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == _config(2)
    saved = caddy.config_path(tmp_path)
    assert json.loads(saved.read_text()) == _config(2)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert caddy.saved_config(tmp_path) == _config(2)


def test_no_saved_config_before_a_load_or_when_the_file_is_not_json(tmp_path: Path) -> None:
    assert caddy.saved_config(tmp_path) is None
    caddy.config_path(tmp_path).parent.mkdir(parents=True)
    caddy.config_path(tmp_path).write_text("{not json")
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
    assert not caddy.config_path(tmp_path).exists()


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


@pytest.mark.parametrize("admin", [None, {"listen": "127.0.0.1:2020"}, "127.0.0.1:2019"])
def test_a_config_that_would_move_the_admin_api_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, admin: object
) -> None:
    seen = _answering(monkeypatch, lambda request: httpx.Response(200))
    config: dict[str, Any] = {"apps": {}}
    if admin is not None:
        config["admin"] = admin
    with pytest.raises(Invalid, match=r"must keep the admin API on 127\.0\.0\.1:2019"):
        caddy.load_config(config, tmp_path)
    assert seen == []


def test_prepare_keeps_saved_routes_and_fixes_only_the_admin_block(tmp_path: Path) -> None:
    saved = _config(2)
    saved["admin"] = {"listen": "127.0.0.1:2020"}
    caddy.config_path(tmp_path).parent.mkdir(parents=True)
    caddy.config_path(tmp_path).write_text(json.dumps(saved))
    caddy._prepare_files(tmp_path, caddy.ADMIN_LISTEN)
    assert json.loads(caddy.config_path(tmp_path).read_text()) == _config(2)
    assert stat.S_IMODE(caddy.caddy_dir(tmp_path).stat().st_mode) == 0o700


def test_prepare_writes_the_minimal_config_when_there_is_none(tmp_path: Path) -> None:
    caddy._prepare_files(tmp_path, caddy.ADMIN_LISTEN)
    written = json.loads(caddy.config_path(tmp_path).read_text())
    assert written == {"admin": {"listen": "127.0.0.1:2019", "config": {"persist": False}}}


class _Host:
    """Fakes for the host around ensure_caddy: systemd units, processes, the admin API."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, systemd: bool) -> None:
        self.commands: list[list[str]] = []
        self.ok_commands: set[tuple[str, ...]] = set()
        self.answers = False
        self.started: list[list[str]] = []
        # The checks for an installed Caddy must pass on machines without one.
        monkeypatch.setattr(caddy, "CADDY_BINARY", sys.executable)
        monkeypatch.setattr(caddy, "systemd_is_running", lambda: systemd)
        monkeypatch.setattr(caddy, "run", self.run)
        monkeypatch.setattr(caddy, "caddy_answers", lambda admin_listen: self.answers)
        monkeypatch.setattr(caddy, "_other_program_listens", lambda admin_listen: False)
        monkeypatch.setattr(caddy, "_our_pid", lambda state_dir: None)
        monkeypatch.setattr(caddy.services, "start_service", self.start)
        monkeypatch.setattr(caddy, "_wait_until_answering", lambda *args: None)

    def run(self, argv: list[str], check: bool = True) -> Completed:
        self.commands.append(list(argv))
        ok = tuple(argv) in self.ok_commands
        if tuple(argv[:2]) in {("systemctl", "start"), ("systemctl", "restart")}:
            self.answers = True
        return Completed(tuple(argv), 0 if ok or check else 1, "", "")

    def start(self, state_dir: Path, name: str, argv: list[str], env: dict[str, str]) -> int:
        self.started.append(argv)
        assert env["XDG_DATA_HOME"] == str(state_dir / "caddy" / "data")
        self.answers = True
        return 4242


def test_background_start_runs_caddy_on_the_saved_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _Host(monkeypatch, systemd=False)
    assert caddy.ensure_caddy(tmp_path) == "started (background)"
    assert host.started == [
        [caddy.CADDY_BINARY, "run", "--config", str(caddy.config_path(tmp_path))]
    ]


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


def test_systemd_without_an_installed_unit_says_to_run_host_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _Host(monkeypatch, systemd=True)
    monkeypatch.setattr(caddy, "UNIT_PATH", tmp_path / "missing.service")
    with pytest.raises(HostFailure, match="missing; run 'cloche host init'"):
        caddy.ensure_caddy(tmp_path)
