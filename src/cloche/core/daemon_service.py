"""Installing and (re)starting the cloche daemon: a systemd unit, or a background process."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from cloche.core.context import HostEffects
from cloche.core.ports import Services
from cloche.model.build import code_fingerprint, config_fingerprint
from cloche.model.config import ClocheConfig, load_config_text
from cloche.model.errors import HostFailure
from cloche.model.paths import CONFIG_PATH, DAEMON_SERVICE, DAEMON_SOCKET
from cloche.render.systemd import UNIT_PATH, render_daemon_unit

START_SECONDS = 30.0


def daemon_health(services: Services, socket_path: str = DAEMON_SOCKET) -> dict[str, object] | None:
    """The daemon's health answer, or None when it does not answer."""
    body = services.get_over_socket(socket_path, "/v1/health")
    if body is None:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _wait_for_daemon(services: Services, socket_path: str, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        health = daemon_health(services, socket_path)
        if health is not None:
            return health
        if time.monotonic() >= deadline:
            raise HostFailure(
                f"The cloche daemon did not answer on {socket_path} within {seconds:.0f} s; read "
                "/var/lib/cloche/log/cloche.log (or 'journalctl -u cloche') and run "
                "'cloche host init'."
            )
        time.sleep(0.2)


def _config_on_disk(host: HostEffects, config_path: Path) -> str:
    # The same reading as the daemon's at start: the file, or the defaults when there is none.
    text = host.files.read(config_path)
    config = load_config_text(text, str(config_path)) if text is not None else ClocheConfig()
    return config_fingerprint(config)


def ensure_daemon(
    host: HostEffects,
    state_dir: Path,
    socket_path: str = DAEMON_SOCKET,
    config_path: Path = Path(CONFIG_PATH),
) -> str:
    """Make the daemon run the installed code and config; say what was done ('kept', ...)."""
    services = host.services
    created_group = services.ensure_admin_group()
    health = daemon_health(services, socket_path)
    current = (
        health is not None
        and health.get("code") == code_fingerprint()
        and health.get("config") == _config_on_disk(host, config_path)
    )
    if services.systemd_runs():
        unit_changed = services.install_unit(Path(UNIT_PATH), render_daemon_unit(sys.executable))
        if current and not unit_changed:
            return "kept"
        services.restart_unit(DAEMON_SERVICE)
        _wait_for_daemon(services, socket_path, START_SECONDS)
        return "restarted (systemd)"
    if current:
        return "kept" if not created_group else "kept (created group cloche-admin)"
    stopped = services.stop_background(state_dir, DAEMON_SERVICE)
    services.start_background(
        state_dir,
        DAEMON_SERVICE,
        [sys.executable, "-m", "cloche", "serve", "--socket", socket_path],
        env=dict(os.environ),
    )
    _wait_for_daemon(services, socket_path, START_SECONDS)
    return "restarted" if stopped else "started"
