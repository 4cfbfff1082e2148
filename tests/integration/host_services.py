"""Stop, kill and restart the daemon, LXD and Caddy the way the product runs them on this host.

Where systemd is PID 1 they are units (cloche.service, lxd.service, cloche-caddy.service) and
systemctl acts on them, so systemd neither restarts a stopped one behind the test's back nor
keeps a killed one dead; elsewhere they are background processes with pid files under the state
dir, stopped the way 'cloche host init' stops them (host.services).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from cloche.host import caddy, services
from cloche.host.lxd_daemon import systemd_is_running
from cloche.model.paths import CADDY_ADMIN_SOCKET, DAEMON_SERVICE

STATE_DIR = Path("/var/lib/cloche")
LXD_UNIT = "lxd.service"


def systemd_runs() -> bool:
    """Whether systemd is PID 1 here (the product's own test)."""
    return systemd_is_running()


def _systemctl(*args: str) -> str:
    result = subprocess.run(
        ["systemctl", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout.strip()


def _wait_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} still runs after {seconds:.0f} s"
        time.sleep(0.1)


def daemon_pid() -> int | None:
    """The cloche daemon's main pid, or None when it does not run."""
    if systemd_runs():
        pid = int(_systemctl("show", "--property=MainPID", "--value", DAEMON_SERVICE) or 0)
        return pid or None
    return services.running_pid(STATE_DIR, DAEMON_SERVICE)


def kill_daemon() -> None:
    """SIGKILL the daemon's main process, as a crash would (systemd may restart it)."""
    pid = daemon_pid()
    assert pid is not None, "the cloche daemon does not run; run 'cloche host init'"
    if systemd_runs():
        _systemctl("kill", "--kill-whom=main", "--signal=KILL", DAEMON_SERVICE)
    else:
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10)


def stop_daemon() -> None:
    """Stop the daemon and leave it stopped ('cloche host init' starts it again)."""
    if systemd_runs():
        _systemctl("stop", DAEMON_SERVICE)  # Restart=on-failure does not undo a stop
        return
    pid = daemon_pid()
    assert services.stop_service(STATE_DIR, DAEMON_SERVICE), "the cloche daemon did not run"
    if pid is not None:
        _wait_gone(pid, 20)


def lxd_pid() -> int:
    """The LXD daemon's pid, as LXD itself reports it."""
    result = subprocess.run(
        ["lxc", "query", "/1.0"], capture_output=True, text=True, timeout=60, check=True
    )
    return int(json.loads(result.stdout)["environment"]["server_pid"])


def stop_lxd() -> None:
    """Stop LXD (SIGTERM: its instances keep running) until 'cloche host init' starts it."""
    pid = lxd_pid()
    if systemd_runs():
        # KillMode=process: only the daemon goes. lxd.socket starts it again on the next client.
        _systemctl("stop", LXD_UNIT)
    else:
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, 60)


def restart_caddy() -> None:
    """Restart the host's Caddy, which comes back with the config cloche saved for it."""
    if systemd_runs():
        _systemctl("restart", caddy.CADDY_SERVICE)
    else:
        assert services.stop_service(STATE_DIR, caddy.CADDY_SERVICE), "cloche's Caddy did not run"
        caddy.ensure_caddy(STATE_DIR)  # what 'cloche host init' and the reconciler do
    deadline = time.monotonic() + 30
    while not caddy.caddy_answers():
        assert time.monotonic() < deadline, "Caddy did not answer on its socket after a restart"
        time.sleep(0.2)


def caddy_admin(method: str, path: str) -> httpx.Response:
    """A request to Caddy's admin API over its socket, as root (as the daemon makes them)."""
    transport = httpx.HTTPTransport(uds=CADDY_ADMIN_SOCKET)
    # On a unix socket Caddy accepts only an empty Host header.
    with httpx.Client(
        transport=transport, base_url="http://localhost", headers={"Host": ""}, trust_env=False
    ) as client:
        return client.request(method, path, timeout=10)
