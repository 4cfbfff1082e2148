"""Installing and (re)starting the cloche daemon: a systemd unit, or a background process."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from cloche.host import services
from cloche.host.accounts import ADMIN_GROUP, ensure_group, group_id
from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.lxd_daemon import systemd_is_running
from cloche.host.run import run
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.config import ClocheConfig, load_config_text
from cloche.model.errors import HostFailure
from cloche.model.paths import CONFIG_PATH, DAEMON_SERVICE, DAEMON_SOCKET
from cloche.render.systemd import UNIT_PATH, render_daemon_unit


def daemon_health(socket_path: str = DAEMON_SOCKET) -> dict[str, object] | None:
    """The daemon's health answer, or None when it does not answer."""
    body = services.http_get_over_unix_socket(socket_path, "/v1/health")
    if body is None:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _wait_for_daemon(socket_path: str, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        health = daemon_health(socket_path)
        if health is not None:
            return health
        time.sleep(0.2)
    raise HostFailure(
        f"The cloche daemon did not answer on {socket_path} within {seconds:.0f} s; read "
        "/var/lib/cloche/log/cloche.log (or 'journalctl -u cloche') and run 'cloche host init'."
    )


def _config_on_disk(config_path: Path) -> str:
    # The same reading as the daemon's at start: the file, or the defaults when there is none.
    text = read_text_or_none(config_path)
    config = load_config_text(text, str(config_path)) if text is not None else ClocheConfig()
    return config_fingerprint(config)


def ensure_daemon(
    state_dir: Path, socket_path: str = DAEMON_SOCKET, config_path: Path = Path(CONFIG_PATH)
) -> str:
    """Make the daemon run the installed code and config; say what was done ('kept', ...)."""
    created_group = ensure_group(ADMIN_GROUP)
    health = daemon_health(socket_path)
    current = (
        health is not None
        and health.get("code") == code_fingerprint()
        and health.get("config") == _config_on_disk(config_path)
    )
    if systemd_is_running():
        unit = render_daemon_unit(sys.executable)
        unit_changed = read_text_or_none(Path(UNIT_PATH)) != unit
        if unit_changed:
            write_atomically(Path(UNIT_PATH), unit)
            run(["systemctl", "daemon-reload"])
        if current and not unit_changed:
            return "kept"
        run(["systemctl", "enable", DAEMON_SERVICE])
        run(["systemctl", "restart", DAEMON_SERVICE])
        _wait_for_daemon(socket_path, 30)
        return "restarted (systemd)"
    if current:
        return "kept" if not created_group else "kept (created group cloche-admin)"
    stopped = services.stop_service(state_dir, DAEMON_SERVICE)
    services.start_service(
        state_dir,
        DAEMON_SERVICE,
        [sys.executable, "-m", "cloche", "serve", "--socket", socket_path],
        env=dict(os.environ),
    )
    _wait_for_daemon(socket_path, 30)
    return "restarted" if stopped else "started"


def prepare_socket_directory(socket_path: Path) -> None:
    """Make the socket's directory reachable by root and cloche-admin only; clear a stale socket."""
    # uvicorn makes the socket itself world-writable, so access is decided by the directory.
    directory = socket_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    gid = group_id(ADMIN_GROUP)
    os.chown(directory, 0, gid if gid is not None else 0)
    os.chmod(directory, 0o750)  # noqa: S103 - group cloche-admin may reach the socket
    if socket_path.exists():
        socket_path.unlink()
