"""Caddy, which serves published http:// and https:// routes: run it, and load its JSON config.

Caddy runs as its own user (caddy, with CAP_NET_BIND_SERVICE only): as the systemd unit
cloche-caddy where systemd runs, else as a background process started through setpriv, with its
pid and log under the state dir. Its certificates, its internal CA and the last config cloche
loaded live in its home (caddy_home), so a restarted Caddy serves the same routes with the same
certificates. A config goes in through the admin API (POST /load) on a unix socket only root and
the caddy user may open: Caddy applies it atomically and keeps serving the old one when the new
one fails, so there is nothing to roll back here.
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

from cloche.host import caddy_home, services
from cloche.host.accounts import user_ids
from cloche.host.caddy_home import Ids, config_path
from cloche.host.files import read_text_or_none, write_atomically
from cloche.host.lxd_daemon import systemd_is_running
from cloche.host.run import run
from cloche.model.errors import HostFailure, Invalid
from cloche.model.paths import CADDY_ADMIN_LISTEN, CADDY_USER

CADDY_SERVICE = "cloche-caddy"
ADMIN_LISTEN = CADDY_ADMIN_LISTEN
CADDY_BINARY = "/usr/bin/caddy"
UNIT_PATH = Path(f"/etc/systemd/system/{CADDY_SERVICE}.service")
# Debian's own unit serves /etc/caddy/Caddyfile on ports 80 and 443, its admin API on TCP 2019.
DEBIAN_UNIT = "caddy.service"
START_TIMEOUT_SECONDS = 15.0
_CONNECT_SECONDS = 2.0
_READ_SECONDS = 5.0
# Loading waits until the old config's servers have stopped, which open requests can delay.
_LOAD_SECONDS = 30.0
_ERROR_CHARACTERS = 300


def log_path(state_dir: Path) -> Path:
    """Caddy's log when it runs in the background (under systemd it goes to the journal)."""
    return state_dir / "log" / f"{CADDY_SERVICE}.log"


def minimal_config(admin_listen: str = ADMIN_LISTEN) -> dict[str, Any]:
    """A config with the admin API only: what Caddy starts with before any route is loaded."""
    return {"admin": {"listen": admin_listen, "config": {"persist": False}}}


def _client(admin_listen: str, timeout: float) -> httpx.Client:
    if not admin_listen.startswith("unix/"):
        # On TCP, even loopback, any local process could reconfigure every route.
        raise Invalid(f"Caddy's admin address {admin_listen!r} is not unix/PATH; use a socket.")
    # trust_env=False: an HTTP(S)_PROXY in the environment must not reroute the requests.
    limits = httpx.Timeout(timeout, connect=_CONNECT_SECONDS)
    # On a unix socket Caddy accepts only an empty Host header.
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(caddy_home.socket_path(admin_listen))),
        base_url="http://localhost",
        headers={"Host": ""},
        timeout=limits,
        trust_env=False,
    )


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
    # Caddy (the caddy group) must read what it restarts with; without that user, root only.
    caddy_home.write_config(state_dir, config, user_ids(CADDY_USER) or (os.geteuid(), 0))


def _log_hint(state_dir: Path) -> str:
    if systemd_is_running():
        return f"'journalctl -u {CADDY_SERVICE}'"
    return str(log_path(state_dir))


def _prepare_files(state_dir: Path, admin_listen: str, ids: Ids, *, move: bool) -> None:
    caddy_home.prepare_home(state_dir, minimal_config(admin_listen)["admin"], ids, move=move)


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
    # A stale socket file refuses connections; a live one that is not Caddy accepts them.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_CONNECT_SECONDS)
        try:
            probe.connect(str(caddy_home.socket_path(admin_listen)))
        except OSError:
            return False
    return True


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


def _runs_as_caddy(state_dir: Path, ids: Ids) -> int | None:
    pid = _our_pid(state_dir)
    if pid is not None and caddy_home.process_uid(pid) not in (ids[0], None):
        # Started as root before Caddy had its own user and socket: replace it.
        services.stop_service(state_dir, CADDY_SERVICE)
        return None
    return pid


def _ensure_in_background(state_dir: Path, admin_listen: str, ids: Ids) -> str:
    pid = _runs_as_caddy(state_dir, ids)
    if pid is not None:
        _prepare_files(state_dir, admin_listen, ids, move=False)
        _wait_until_answering(state_dir, admin_listen, pid)  # it may still be starting
        return "already running"
    _refuse_another_caddy(admin_listen)
    _prepare_files(state_dir, admin_listen, ids, move=True)
    caddy_home.prepare_socket_directory(admin_listen, ids)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        **caddy_home.caddy_environment(state_dir),
    }
    pid = services.start_service(
        state_dir,
        CADDY_SERVICE,
        caddy_home.as_caddy_user(
            [CADDY_BINARY, "run", "--config", str(config_path(state_dir))], ids
        ),
        env=environment,
    )
    _wait_until_answering(state_dir, admin_listen, pid)
    return "started (background)"


def _unit_state(verb: str, unit: str) -> bool:
    return run(["systemctl", verb, "--quiet", unit], check=False).ok


def _ensure_with_systemd(
    state_dir: Path, admin_listen: str, unit_text: str | None, ids: Ids
) -> str:
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
        _prepare_files(state_dir, admin_listen, ids, move=False)
        _wait_until_answering(state_dir, admin_listen, None)
        return "already running" + note
    if active:
        # A changed unit takes effect only on a new start, and the old one may still run as
        # root on the legacy files, which move only while it is stopped.
        run(["systemctl", "stop", CADDY_SERVICE])
    else:
        _refuse_another_caddy(admin_listen)
    # Only host init (which gives the unit) moves files: the installed unit may be the old one.
    _prepare_files(state_dir, admin_listen, ids, move=unit_text is not None)
    run(["systemctl", "start", CADDY_SERVICE])
    _wait_until_answering(state_dir, admin_listen, None)
    return ("restarted (systemd)" if active else "started (systemd)") + note


def ensure_caddy(
    state_dir: Path, admin_listen: str = ADMIN_LISTEN, *, unit_text: str | None = None
) -> str:
    """Make Caddy run as its user and answer; say how: 'already running', 'started (...)'."""
    # Where systemd runs, unit_text (render.systemd.render_caddy_unit; host may not import
    # render) is installed when given, else the installed unit is used. Notes (Debian's
    # caddy.service disabled, the caddy user created) follow the answer after '; '.
    if not Path(CADDY_BINARY).exists():
        raise HostFailure(
            f"Caddy is not installed ({CADDY_BINARY} is missing); run 'cloche host init' to "
            "install the Debian package caddy."
        )
    ids, created = caddy_home.caddy_ids(state_dir)
    note = f"; created the system user {CADDY_USER}" if created else ""
    if systemd_is_running():
        return _ensure_with_systemd(state_dir, admin_listen, unit_text, ids) + note
    return _ensure_in_background(state_dir, admin_listen, ids) + note
