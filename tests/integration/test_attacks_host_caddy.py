"""Attacks on Caddy's admin API from a local account of the host, with positive controls.

Whoever reaches Caddy's admin API controls every route (it could load a file server rooted at
/). It is a unix socket in a directory only root and the caddy user may enter, nothing listens
on TCP 127.0.0.1:2019, and Caddy itself runs as the caddy user. The attacker is a temporary
system account of this run, deleted afterwards; the probes it runs are the same ones that, as
controls, reach a TCP listener and a world-open socket of the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloche.host import caddy, caddy_home, services
from cloche.model.paths import CADDY_ADMIN_SOCKET, CADDY_USER
from tests.conftest import unique_suffix
from tests.integration import host_services
from tests.integration.cloche_cli import cloche, cloche_ok
from tests.integration.test_firewall import HTTP_PORT
from tests.integration.test_publish import Site, fetch_https, site, until

__all__ = ["site"]  # the module fixture of test_publish, shared here

pytestmark = pytest.mark.skipif(
    not Path(caddy.CADDY_BINARY).exists(), reason="needs Caddy (the Debian package caddy)"
)

OLD_ADMIN_PORT = 2019
# Run as the attacker: what each connection attempt gives, as the exception's name.
PROBE = """
import json, os, socket, sys

def tcp(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
        return "connected"
    except OSError as error:
        return type(error).__name__

def unix(path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(3)
    try:
        probe.connect(path)
        return "connected"
    except OSError as error:
        return type(error).__name__
    finally:
        probe.close()

def listing(path):
    try:
        os.listdir(path)
        return "listed"
    except OSError as error:
        return type(error).__name__

admin_socket, control_socket, control_port = sys.argv[1:4]
print(json.dumps({
    "uid": os.getuid(),
    "old_admin_port": tcp(2019),
    "admin_socket": unix(admin_socket),
    "admin_directory": listing(os.path.dirname(admin_socket)),
    "control_port": tcp(control_port),
    "control_socket": unix(control_socket),
}))
"""


@pytest.fixture
def attacker() -> Iterator[pwd.struct_passwd]:
    """A system account of this run only, no home, no login shell; deleted afterwards."""
    name = f"cprobe{unique_suffix()}"
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)
        subprocess.run(["groupdel", name], check=False, capture_output=True, timeout=30)


@contextlib.contextmanager
def controls() -> Iterator[tuple[str, int]]:
    """A TCP listener on loopback and a unix socket anyone may open: (socket path, port)."""
    directory = Path(tempfile.mkdtemp(prefix="cloche-probe-", dir="/var/tmp"))
    os.chmod(directory, 0o755)
    path = directory / "open.sock"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix_listener,
        socket.create_server(("127.0.0.1", 0)) as tcp_listener,
    ):
        unix_listener.bind(str(path))
        os.chmod(path, 0o777)
        unix_listener.listen()
        try:
            yield str(path), int(tcp_listener.getsockname()[1])
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def probe_as(account: pwd.struct_passwd, control_socket: str, control_port: int) -> dict[str, str]:
    """Run PROBE as account, without capabilities or supplementary groups."""
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            "/usr/bin/python3",
            "-c",
            PROBE,
            CADDY_ADMIN_SOCKET,
            control_socket,
            str(control_port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, str] = json.loads(result.stdout)
    return answers


def test_an_unprivileged_account_cannot_reach_caddys_admin_api(
    attacker: pwd.struct_passwd,
) -> None:
    cloche_ok("host", "init")  # Caddy runs, on its socket
    with controls() as (control_socket, control_port):
        seen = probe_as(attacker, control_socket, control_port)
    # Positive controls: the attacker's probes do connect where they are allowed to.
    assert seen["uid"] == attacker.pw_uid
    assert (seen["control_port"], seen["control_socket"]) == ("connected", "connected")
    # Nothing answers on the old TCP admin port, and the socket refuses the account.
    assert seen["old_admin_port"] == "ConnectionRefusedError"
    assert seen["admin_socket"] == "PermissionError"
    assert seen["admin_directory"] == "PermissionError"
    # Positive control: root (the daemon) reads the config through that socket.
    answer = host_services.caddy_admin("GET", "/config/")
    assert answer.status_code == 200
    assert answer.json()["admin"]["listen"] == f"unix/{CADDY_ADMIN_SOCKET}"


def test_the_admin_socket_is_the_caddy_users_and_caddy_runs_as_it() -> None:
    cloche_ok("host", "init")
    caddy_user = pwd.getpwnam(CADDY_USER)
    directory = Path(CADDY_ADMIN_SOCKET).parent
    info = directory.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == caddy_user.pw_uid
    home = caddy_home.caddy_dir(host_services.STATE_DIR).stat()
    assert stat.S_IMODE(home.st_mode) == 0o700 and home.st_uid == caddy_user.pw_uid
    # No Caddy process of this host runs as root any more.
    caddies = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and _comm(pid) == "caddy" and _cgroup_is_ours(pid)
    ]
    assert caddies, "no Caddy process found"
    assert all(caddy_home.process_uid(int(pid)) == caddy_user.pw_uid for pid in caddies)


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cgroup_is_ours(pid: str) -> bool:
    # Other tests' private Caddies run in the background too; the host's is the one whose
    # pid file (or unit) cloche keeps.
    if host_services.systemd_runs():
        with contextlib.suppress(OSError):
            return caddy.CADDY_SERVICE in Path(f"/proc/{pid}/cgroup").read_text()
        return False
    return services.running_pid(host_services.STATE_DIR, caddy.CADDY_SERVICE) == int(pid)


def test_routes_still_serve_after_a_caddy_restart(site: Site) -> None:
    address = f"{site.user}/{site.env}"
    domain = f"restart-{site.user}.test"
    cloche_ok("publish", address, f"https://{domain}:{HTTP_PORT}")
    try:
        until(lambda: fetch_https(site, domain)[1] == "200", 30, "no https answer")
        assert fetch_https(site, domain)[0] == site.marker  # positive control, before
        host_services.restart_caddy()
        until(lambda: fetch_https(site, domain)[1] == "200", 30, "no https answer after restart")
        assert fetch_https(site, domain)[0] == site.marker
    finally:
        cloche("unpublish", address, f"https://{domain}:{HTTP_PORT}")
