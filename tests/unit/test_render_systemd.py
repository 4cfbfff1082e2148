"""The systemd units of the daemon and of its Caddy (golden), and the copies in packaging/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cloche.host import caddy, caddy_home
from cloche.model.errors import Invalid
from cloche.model.host import CaddyService
from cloche.render.systemd import render_caddy_unit, render_daemon_unit
from tests.unit.golden import assert_golden

PACKAGING = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
STATE_DIR = Path("/var/lib/cloche")


def _service(state_dir: Path, **changes: str) -> CaddyService:
    service = CaddyService(
        caddy.CADDY_BINARY,
        str(caddy_home.caddy_dir(state_dir)),
        str(caddy_home.config_path(state_dir)),
        caddy_home.caddy_environment(state_dir),
        "caddy",
        "/run/cloche-caddy/admin.sock",
    )
    return dataclasses.replace(service, **changes)


def _caddy_unit(state_dir: Path) -> str:
    return render_caddy_unit(_service(state_dir))


def test_daemon_unit_golden() -> None:
    assert_golden("systemd/cloche.service", render_daemon_unit("/opt/cloche/.venv/bin/python"))


def test_caddy_unit_golden() -> None:
    assert_golden("systemd/cloche-caddy.service", _caddy_unit(STATE_DIR))


def test_packaging_holds_the_units_host_init_writes() -> None:
    daemon = render_daemon_unit("/opt/cloche/.venv/bin/python")
    assert (PACKAGING / "cloche.service").read_text() == daemon
    assert (PACKAGING / "cloche-caddy.service").read_text() == _caddy_unit(STATE_DIR)


def test_caddy_unit_keeps_every_caddy_file_in_its_own_home() -> None:
    unit = _caddy_unit(Path("/srv/state"))
    assert "ExecStart=/usr/bin/caddy run --config /srv/state-caddy/config.json\n" in unit
    assert "Environment=XDG_DATA_HOME=/srv/state-caddy/data\n" in unit
    assert "Environment=XDG_CONFIG_HOME=/srv/state-caddy/config\n" in unit
    assert "ReadWritePaths=/srv/state-caddy\n" in unit
    # Debian's unit reads /etc/caddy/Caddyfile; this one must never.
    assert "/etc/caddy" not in unit


def test_caddy_runs_as_its_user_with_only_the_bind_capability() -> None:
    lines = set(_caddy_unit(STATE_DIR).splitlines())
    assert {
        "User=caddy",
        "Group=caddy",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=true",
        # The admin socket's directory: systemd makes it 0700 and the caddy user's.
        "RuntimeDirectory=cloche-caddy",
        "RuntimeDirectoryMode=0700",
    } <= lines
    assert "User=root" not in lines


@pytest.mark.parametrize("state_dir", ["/srv/my state", "/srv/100%", "/srv/$HOME", '/srv/"q"'])
def test_caddy_unit_refuses_paths_systemd_would_rewrite(state_dir: str) -> None:
    with pytest.raises(Invalid, match="cannot be written into Caddy's systemd unit"):
        _caddy_unit(Path(state_dir))


def test_caddy_unit_refuses_environment_names_that_are_not_identifiers() -> None:
    service = dataclasses.replace(_service(STATE_DIR), environment={"BAD NAME": "/s"})
    with pytest.raises(Invalid, match="must be identifiers"):
        render_caddy_unit(service)


@pytest.mark.parametrize(
    "socket",
    ["/tmp/admin.sock", "/run/admin.sock", "/run/a/b/admin.sock", "/run/Caddy/s", "/run/c/"],
)
def test_caddy_unit_needs_the_admin_socket_in_a_run_directory_of_its_own(socket: str) -> None:
    with pytest.raises(Invalid, match="must be /run/NAME/FILE"):
        render_caddy_unit(_service(STATE_DIR, admin_socket=socket))


@pytest.mark.parametrize("user", ["root caddy", "Caddy", "", "caddy\nUser=root"])
def test_caddy_unit_refuses_a_user_that_is_not_a_name(user: str) -> None:
    with pytest.raises(Invalid, match="is not a user name"):
        render_caddy_unit(_service(STATE_DIR, user=user))
