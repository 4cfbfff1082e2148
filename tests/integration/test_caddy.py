"""host.caddy against the real Caddy: starting it (idempotent), loading configs, refusals.

The host's own Caddy (state dir /var/lib/cloche) belongs to the daemon, whose reconciler puts its
config back whenever it drifts, and it may serve real routes. So only the start test touches it
(without loading anything); the loading tests start a private Caddy through the same code, with
its own state dir, admin socket and ports, and stop it afterwards. Caddy runs as the caddy user,
so a private one lives in a directory that user can reach (not pytest's 0700 tmp_path).
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloche.host import caddy, caddy_home, services
from cloche.host.accounts import user_ids
from cloche.model.errors import HostFailure
from cloche.model.paths import CADDY_USER
from cloche.model.routes import HttpRoute, PublishedHttpRoute, parse_route
from cloche.render.caddy import render_caddy_config
from tests.integration.conftest import free_port

pytestmark = pytest.mark.skipif(
    not Path(caddy.CADDY_BINARY).exists(), reason="needs Caddy (the Debian package caddy)"
)

STATE_DIR = Path("/var/lib/cloche")


def _caddy_pid(state_dir: Path) -> int | None:
    if caddy.systemd_is_running():
        shown = subprocess.run(
            ["systemctl", "show", "--property=MainPID", "--value", caddy.CADDY_SERVICE],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(shown.stdout.strip() or 0) or None
    return services.running_pid(state_dir, caddy.CADDY_SERVICE)


def test_ensure_caddy_is_idempotent_on_the_host() -> None:
    first = caddy.ensure_caddy(STATE_DIR)
    assert first.split(";")[0] in {
        "already running",
        "started (background)",
        "started (systemd)",
        "restarted (systemd)",
    }
    assert caddy.ensure_caddy(STATE_DIR) == "already running"
    assert caddy.caddy_answers()
    live = caddy.current_config()
    assert live is not None
    assert live["admin"]["listen"] == caddy.ADMIN_LISTEN == "unix//run/cloche-caddy/admin.sock"
    ids = user_ids(CADDY_USER)
    assert ids is not None
    # Caddy runs as its own user, with the bind capability only.
    pid = _caddy_pid(STATE_DIR)
    assert pid is not None and caddy_home.process_uid(pid) == ids[0]
    status = Path(f"/proc/{pid}/status").read_text()
    assert "CapEff:\t0000000000000400" in status  # CAP_NET_BIND_SERVICE (bit 10) alone
    saved = caddy_home.config_path(STATE_DIR)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o640
    assert (saved.stat().st_uid, saved.stat().st_gid) == (0, ids[1])
    home = caddy_home.caddy_dir(STATE_DIR)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and home.stat().st_uid == ids[0]
    socket_dir = caddy_home.socket_path(caddy.ADMIN_LISTEN).parent
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700 and socket_dir.stat().st_uid == ids[0]
    # The certificates and the internal CA moved to the new home.
    assert not (caddy_home.legacy_caddy_dir(STATE_DIR) / "data").exists()


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory of this test that the caddy user can traverse (0755), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="cloche-caddy-test-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _private_listen(base: Path) -> str:
    return f"unix/{base}/admin/admin.sock"


@dataclass
class PrivateCaddy:
    """A Caddy started by ensure_caddy in a state dir of its own, and its ports."""

    state_dir: Path
    admin_listen: str
    http_port: int
    https_port: int

    def config(self, backend_port: int, domain: str, **options: Any) -> dict[str, Any]:
        """The rendered config publishing https://domain to the backend on 127.0.0.1."""
        route = parse_route(f"https://{domain}:{backend_port}")
        assert isinstance(route, HttpRoute)
        settings: dict[str, Any] = {
            "tls": "internal",
            "admin_listen": self.admin_listen,
            "http_port": self.http_port,
            "https_port": self.https_port,
            **options,
        }
        return render_caddy_config([PublishedHttpRoute(route, "127.0.0.1", "t/web")], **settings)

    def get(self, domain: str, host_header: str | None = None) -> subprocess.CompletedProcess[str]:
        """curl https://domain/ through this Caddy, trusting only its internal CA."""
        command = [
            "curl",
            "--silent",
            "--show-error",
            "--max-time",
            "5",
            "--resolve",
            f"{domain}:{self.https_port}:127.0.0.1",
            "--cacert",
            str(caddy_home.root_certificate_path(self.state_dir)),
            f"https://{domain}:{self.https_port}/",
        ]
        if host_header is not None:
            command[1:1] = ["--header", f"Host: {host_header}"]
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    def wait_for(self, domain: str, marker: str) -> None:
        """Wait until domain serves marker (the certificate is issued just after the load)."""
        deadline = time.monotonic() + 15
        while True:
            result = self.get(domain)
            if marker in result.stdout:
                return
            assert time.monotonic() < deadline, result.stderr + result.stdout
            time.sleep(0.2)


@pytest.fixture
def private_caddy(reachable_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateCaddy]:
    """A Caddy of this test only, run in the background even where systemd runs."""
    monkeypatch.setattr(caddy, "systemd_is_running", lambda: False)
    state_dir = reachable_dir / "state"
    admin_listen = _private_listen(reachable_dir)
    try:
        assert caddy.ensure_caddy(state_dir, admin_listen) == "started (background)"
        assert caddy.ensure_caddy(state_dir, admin_listen) == "already running"
        yield PrivateCaddy(state_dir, admin_listen, free_port(), free_port())
    finally:
        services.stop_service(state_dir, caddy.CADDY_SERVICE)


@pytest.fixture
def backend() -> Iterator[tuple[int, str]]:
    """A tiny HTTP server on 127.0.0.1 answering every GET with a marker; (port, marker)."""
    marker = f"hello-{secrets.token_hex(4)}"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = marker.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], marker
    finally:
        server.shutdown()
        server.server_close()


def test_a_loaded_route_serves_its_domain_only(
    private_caddy: PrivateCaddy, backend: tuple[int, str]
) -> None:
    port, marker = backend
    domain = f"app-{secrets.token_hex(4)}.test"
    config = private_caddy.config(port, domain)
    caddy.load_config(config, private_caddy.state_dir, private_caddy.admin_listen)
    assert caddy.current_config(private_caddy.admin_listen) == config
    private_caddy.wait_for(domain, marker)
    # Another name gets no certificate, and the right certificate with another Host no route.
    other = f"other-{secrets.token_hex(4)}.test"
    assert marker not in private_caddy.get(other).stdout
    assert marker not in private_caddy.get(domain, host_header=other).stdout
    saved = caddy_home.config_path(private_caddy.state_dir)
    assert json.loads(saved.read_text()) == config
    # Root writes it; Caddy (its own user) reads it through its group, nobody else at all.
    assert stat.S_IMODE(saved.stat().st_mode) == caddy_home.CONFIG_MODE == 0o640


def test_a_refused_config_leaves_the_previous_one_serving(
    private_caddy: PrivateCaddy, backend: tuple[int, str]
) -> None:
    port, marker = backend
    domain = f"app-{secrets.token_hex(4)}.test"
    good = private_caddy.config(port, domain)
    caddy.load_config(good, private_caddy.state_dir, private_caddy.admin_listen)
    private_caddy.wait_for(domain, marker)

    unknown_handler = json.loads(json.dumps(good))
    routes = unknown_handler["apps"]["http"]["servers"]["cloche_https"]["routes"]
    routes[0]["handle"][0]["handler"] = "no_such_handler"
    # The backend holds this port, so Caddy cannot listen on it.
    port_taken = private_caddy.config(port, domain, https_port=port)
    refusals = {
        "unknown module: http.handlers.no_such_handler": unknown_handler,
        "address already in use": port_taken,
    }
    for reason, bad in refusals.items():
        with pytest.raises(HostFailure) as caught:
            caddy.load_config(bad, private_caddy.state_dir, private_caddy.admin_listen)
        message = str(caught.value)
        assert message.startswith("Caddy refused the new config and still serves the previous")
        assert reason in message
        assert "\n" not in message
        assert caddy.current_config(private_caddy.admin_listen) == good
        assert json.loads(caddy_home.config_path(private_caddy.state_dir).read_text()) == good
        assert marker in private_caddy.get(domain).stdout


def test_a_restarted_caddy_comes_back_with_the_last_good_config(
    private_caddy: PrivateCaddy, backend: tuple[int, str]
) -> None:
    port, marker = backend
    domain = f"app-{secrets.token_hex(4)}.test"
    config = private_caddy.config(port, domain)
    caddy.load_config(config, private_caddy.state_dir, private_caddy.admin_listen)
    assert services.stop_service(private_caddy.state_dir, caddy.CADDY_SERVICE)
    assert not caddy.caddy_answers(private_caddy.admin_listen)
    started = time.monotonic()
    how = caddy.ensure_caddy(private_caddy.state_dir, private_caddy.admin_listen)
    assert how == "started (background)"
    assert time.monotonic() - started < 5
    assert caddy.current_config(private_caddy.admin_listen) == config
    private_caddy.wait_for(domain, marker)


def test_another_caddy_on_the_admin_address_is_refused(
    private_caddy: PrivateCaddy, tmp_path: Path
) -> None:
    # A second state dir has no pid file of its own, so the Caddy that answers is not its own.
    with pytest.raises(HostFailure, match="Another Caddy, not started by cloche, answers on"):
        caddy.ensure_caddy(tmp_path / "other", private_caddy.admin_listen)
    assert services.running_pid(tmp_path / "other", caddy.CADDY_SERVICE) is None


def test_a_caddy_that_cannot_start_names_the_cause_and_its_log(
    reachable_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caddy, "systemd_is_running", lambda: False)
    state_dir = reachable_dir / "state"
    admin_listen = _private_listen(reachable_dir)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        saved = caddy.minimal_config(admin_listen)
        saved["apps"] = {"http": {"servers": {"s": {"listen": [f"127.0.0.1:{taken}"]}}}}
        caddy_home.config_path(state_dir).parent.mkdir(parents=True)
        caddy_home.config_path(state_dir).write_text(json.dumps(saved))
        try:
            with pytest.raises(HostFailure) as caught:
                caddy.ensure_caddy(state_dir, admin_listen)
        finally:
            services.stop_service(state_dir, caddy.CADDY_SERVICE)
    message = str(caught.value)
    assert message.startswith("Caddy exited while starting (http app module: start: listening")
    assert "address already in use" in message
    assert str(caddy.log_path(state_dir)) in message
    assert "\n" not in message
