"""Caddy, which serves published http:// and https:// routes: run it, and load its JSON config.

Caddy runs as the systemd unit cloche-caddy where systemd runs, else as a background process
with its pid and log under the state dir. Its certificates, its internal CA and the last config
cloche loaded live under STATE/caddy, so a restarted Caddy serves the same routes with the same
certificates. A config goes in through the admin API (POST /load): Caddy applies it atomically
and keeps serving the old one when the new one fails, so there is nothing to roll back here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from cloche.host import services
from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.lxd_daemon import systemd_is_running
from cloche.host.run import run
from cloche.model.errors import HostFailure, Invalid
from cloche.model.paths import CADDY_ADMIN_LISTEN

CADDY_SERVICE = "cloche-caddy"
ADMIN_LISTEN = CADDY_ADMIN_LISTEN
CADDY_BINARY = "/usr/bin/caddy"
UNIT_PATH = Path(f"/etc/systemd/system/{CADDY_SERVICE}.service")
# Debian's own unit serves /etc/caddy/Caddyfile on ports 80 and 443 and the same admin port.
DEBIAN_UNIT = "caddy.service"
START_TIMEOUT_SECONDS = 15.0
_CONNECT_SECONDS = 2.0
_READ_SECONDS = 5.0
# Loading waits until the old config's servers have stopped, which open requests can delay.
_LOAD_SECONDS = 30.0
_ERROR_CHARACTERS = 300


def caddy_dir(state_dir: Path) -> Path:
    """Caddy's home under the state dir: its data (certificates, CA), config and cloche's copy."""
    return state_dir / "caddy"


def config_path(state_dir: Path) -> Path:
    """The last config cloche loaded into Caddy, which Caddy reads when it (re)starts."""
    return caddy_dir(state_dir) / "config.json"


def caddy_environment(state_dir: Path) -> dict[str, str]:
    """HOME and the XDG directories that keep all of Caddy's files under caddy_dir."""
    base = caddy_dir(state_dir)
    return {
        "HOME": str(base),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_DATA_HOME": str(base / "data"),
    }


def root_certificate_path(state_dir: Path) -> Path:
    """The root certificate of Caddy's internal CA (clients trust it for tls: internal)."""
    data = Path(caddy_environment(state_dir)["XDG_DATA_HOME"])
    return data / "caddy" / "pki" / "authorities" / "local" / "root.crt"


def log_path(state_dir: Path) -> Path:
    """Caddy's log when it runs in the background (under systemd it goes to the journal)."""
    return state_dir / "log" / f"{CADDY_SERVICE}.log"


def minimal_config(admin_listen: str = ADMIN_LISTEN) -> dict[str, Any]:
    """A config with the admin API only: what Caddy starts with before any route is loaded."""
    return {"admin": {"listen": admin_listen, "config": {"persist": False}}}


def _client(admin_listen: str, timeout: float) -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute loopback requests.
    limits = httpx.Timeout(timeout, connect=_CONNECT_SECONDS)
    if admin_listen.startswith("unix/"):
        # On a unix socket Caddy accepts only an empty Host header.
        transport = httpx.HTTPTransport(uds=admin_listen.removeprefix("unix/"))
        return httpx.Client(
            transport=transport,
            base_url="http://localhost",
            headers={"Host": ""},
            timeout=limits,
            trust_env=False,
        )
    # httpx sends Host: ADDRESS:PORT, which is one of the origins Caddy's admin API allows.
    return httpx.Client(base_url=f"http://{admin_listen}", timeout=limits, trust_env=False)


def current_config(admin_listen: str = ADMIN_LISTEN) -> dict[str, Any] | None:
    """Caddy's running config ({} when it has none), or None when Caddy does not answer."""
    try:
        with _client(admin_listen, _READ_SECONDS) as client:
            response = client.get("/config/")
        body = response.json() if response.status_code == 200 else False
    except (httpx.HTTPError, ValueError):
        return None
    if body is None:  # Caddy answers null when it runs without any config
        return {}
    return body if isinstance(body, dict) else None


def saved_config(state_dir: Path) -> dict[str, Any] | None:
    """The config load_config last wrote (what Caddy restarts with), or None without one."""
    try:
        saved = json.loads(config_path(state_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def caddy_answers(admin_listen: str = ADMIN_LISTEN) -> bool:
    """True when a Caddy answers on its admin API at admin_listen."""
    return current_config(admin_listen) is not None


def _trim(text: str) -> str:
    # Caddy prefixes every error with the steps that led to it; the cause is at the end.
    text = " ".join(text.split()).removeprefix("Error: ")
    for prefix in ("loading initial config: ", "loading config: ", "loading new config: "):
        text = text.removeprefix(prefix)
    text = text.rstrip(".")
    return text[: _ERROR_CHARACTERS - 3] + "..." if len(text) > _ERROR_CHARACTERS else text


def _caddy_error(response: httpx.Response) -> str:
    try:
        text = str(response.json().get("error", ""))
    except (ValueError, AttributeError):
        text = response.text
    return _trim(text) or f"HTTP status {response.status_code}"


def load_config(config: dict[str, Any], state_dir: Path, admin_listen: str = ADMIN_LISTEN) -> None:
    """Load config into Caddy atomically, then keep it as the config Caddy restarts with."""
    admin = config.get("admin")
    if not isinstance(admin, dict) or admin.get("listen") != admin_listen:
        # Caddy would move (or, without an admin block, reset) its admin API and lose cloche.
        raise Invalid(
            f"The Caddy config must keep the admin API on {admin_listen}; render it with "
            f"admin_listen={admin_listen!r}."
        )
    body = json.dumps(config, sort_keys=True)
    try:
        with _client(admin_listen, _LOAD_SECONDS) as client:
            response = client.post(
                "/load", content=body, headers={"Content-Type": "application/json"}
            )
    except httpx.TimeoutException as error:
        raise HostFailure(
            f"Caddy did not finish loading the new config within {_LOAD_SECONDS:.0f} s; check "
            f"'cloche host status' and {_log_hint(state_dir)}, then try again."
        ) from error
    except httpx.HTTPError as error:
        raise HostFailure(
            f"Caddy does not answer on its admin API at {admin_listen}; run 'cloche host init' "
            "to start it."
        ) from error
    if response.status_code != 200:
        raise HostFailure(
            f"Caddy refused the new config and still serves the previous one: "
            f"{_caddy_error(response)}; fix what it names and try again."
        )
    # Caddy's key order differs from ours; sorted keys keep the file stable between loads.
    write_atomically(
        config_path(state_dir), json.dumps(config, indent=2, sort_keys=True) + "\n", mode=0o600
    )


def _log_hint(state_dir: Path) -> str:
    if systemd_is_running():
        return f"'journalctl -u {CADDY_SERVICE}'"
    return str(log_path(state_dir))


def _prepare_files(state_dir: Path, admin_listen: str) -> None:
    base = caddy_dir(state_dir)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)  # the internal CA's keys and the certificates' keys live here
    text = read_text_or_none(config_path(state_dir))
    try:
        saved = json.loads(text) if text is not None else None
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        saved = {}
    wanted = {**saved, **minimal_config(admin_listen)}
    if text is None or saved != wanted:
        # Keep the saved routes; only an admin block that would lose cloche is replaced.
        write_atomically(
            config_path(state_dir), json.dumps(wanted, indent=2, sort_keys=True) + "\n", mode=0o600
        )


def _our_pid(state_dir: Path) -> int | None:
    pid = services.running_pid(state_dir, CADDY_SERVICE)
    if pid is None:
        return None
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our exited child
    try:
        # A reused pid must not pass for our Caddy.
        return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "caddy" else None
    except OSError:
        return None


def _last_error(state_dir: Path) -> str:
    try:
        with log_path(state_dir).open("rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 4096))
            lines = stream.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("Error:")]
    return _trim((errors or [line for line in lines if line.strip()] or ["no output"])[-1])


def _wait_until_answering(state_dir: Path, admin_listen: str, pid: int | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if caddy_answers(admin_listen):
            return
        if pid is not None and _our_pid(state_dir) is None:
            raise HostFailure(
                f"Caddy exited while starting ({_last_error(state_dir)}); read "
                f"{log_path(state_dir)} and run 'cloche host init' again."
            )
        time.sleep(0.1)
    raise HostFailure(
        f"Caddy did not answer on its admin API at {admin_listen} within "
        f"{START_TIMEOUT_SECONDS:.0f} s; read {_log_hint(state_dir)} and run 'cloche host init' "
        "again."
    )


def _other_program_listens(admin_listen: str) -> bool:
    if admin_listen.startswith("unix/"):
        return False
    host, _, port = admin_listen.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_SECONDS):
            return True
    except (OSError, ValueError):
        return False


def _refuse_another_caddy(admin_listen: str) -> None:
    if caddy_answers(admin_listen):
        raise HostFailure(
            f"Another Caddy, not started by cloche, answers on {admin_listen} (cloche's admin "
            "address); stop it (for Debian's: 'systemctl disable --now caddy') and run "
            "'cloche host init' again."
        )
    if _other_program_listens(admin_listen):
        raise HostFailure(
            f"Another program listens on {admin_listen}, the address of Caddy's admin API; "
            "stop it and run 'cloche host init' again."
        )


def _ensure_in_background(state_dir: Path, admin_listen: str) -> str:
    pid = _our_pid(state_dir)
    if pid is not None:
        _wait_until_answering(state_dir, admin_listen, pid)  # it may still be starting
        return "already running"
    _refuse_another_caddy(admin_listen)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        **caddy_environment(state_dir),
    }
    pid = services.start_service(
        state_dir,
        CADDY_SERVICE,
        [CADDY_BINARY, "run", "--config", str(config_path(state_dir))],
        env=environment,
    )
    _wait_until_answering(state_dir, admin_listen, pid)
    return "started (background)"


def _unit_state(verb: str, unit: str) -> bool:
    return run(["systemctl", verb, "--quiet", unit], check=False).ok


def _ensure_with_systemd(state_dir: Path, admin_listen: str, unit_text: str | None) -> str:
    note = ""
    if _unit_state("is-enabled", DEBIAN_UNIT) or _unit_state("is-active", DEBIAN_UNIT):
        run(["systemctl", "disable", "--now", DEBIAN_UNIT])
        note = "; disabled Debian's caddy.service, which would hold ports 80 and 443"
    installed = read_text_or_none(UNIT_PATH)
    if unit_text is None and installed is None:
        raise HostFailure(f"{UNIT_PATH} is missing; run 'cloche host init' to install it.")
    changed = unit_text is not None and installed != unit_text
    if unit_text is not None and changed:
        write_atomically(UNIT_PATH, unit_text)
        run(["systemctl", "daemon-reload"])
    if not _unit_state("is-enabled", CADDY_SERVICE):
        run(["systemctl", "enable", CADDY_SERVICE])
    active = _unit_state("is-active", CADDY_SERVICE)
    if active and not changed:
        _wait_until_answering(state_dir, admin_listen, None)
        return "already running" + note
    if not active:
        _refuse_another_caddy(admin_listen)
    # A changed unit takes effect only on restart; Caddy comes back with the saved config.
    run(["systemctl", "restart" if active else "start", CADDY_SERVICE])
    _wait_until_answering(state_dir, admin_listen, None)
    return "started (systemd)" + note


def ensure_caddy(
    state_dir: Path, admin_listen: str = ADMIN_LISTEN, *, unit_text: str | None = None
) -> str:
    """Make Caddy run and answer; say how: 'already running', 'started (background|systemd)'."""
    # Where systemd runs, unit_text (render.systemd.render_caddy_unit; host may not import
    # render) is installed when given, else the installed unit is used. When Debian's
    # caddy.service had to be disabled, a note saying so follows the answer after '; '.
    if not Path(CADDY_BINARY).exists():
        raise HostFailure(
            f"Caddy is not installed ({CADDY_BINARY} is missing); run 'cloche host init' to "
            "install the Debian package caddy."
        )
    _prepare_files(state_dir, admin_listen)
    if systemd_is_running():
        return _ensure_with_systemd(state_dir, admin_listen, unit_text)
    return _ensure_in_background(state_dir, admin_listen)
