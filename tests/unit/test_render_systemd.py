"""The systemd units of the daemon and of its Caddy (golden), and the copies in packaging/."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloche.host import caddy
from cloche.model.errors import Invalid
from cloche.render.systemd import render_caddy_unit, render_daemon_unit
from tests.unit.golden import assert_golden

PACKAGING = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
STATE_DIR = Path("/var/lib/cloche")


def _caddy_unit(state_dir: Path) -> str:
    return render_caddy_unit(
        caddy.CADDY_BINARY,
        str(caddy.caddy_dir(state_dir)),
        str(caddy.config_path(state_dir)),
        caddy.caddy_environment(state_dir),
    )


def test_daemon_unit_golden() -> None:
    assert_golden("systemd/cloche.service", render_daemon_unit("/opt/cloche/.venv/bin/python"))


def test_caddy_unit_golden() -> None:
    assert_golden("systemd/cloche-caddy.service", _caddy_unit(STATE_DIR))


def test_packaging_holds_the_units_host_init_writes() -> None:
    daemon = render_daemon_unit("/opt/cloche/.venv/bin/python")
    assert (PACKAGING / "cloche.service").read_text() == daemon
    assert (PACKAGING / "cloche-caddy.service").read_text() == _caddy_unit(STATE_DIR)


def test_caddy_unit_keeps_every_caddy_file_under_the_state_dir() -> None:
    unit = _caddy_unit(Path("/srv/state"))
    assert "ExecStart=/usr/bin/caddy run --config /srv/state/caddy/config.json\n" in unit
    assert "Environment=XDG_DATA_HOME=/srv/state/caddy/data\n" in unit
    assert "Environment=XDG_CONFIG_HOME=/srv/state/caddy/config\n" in unit
    assert "ReadWritePaths=/srv/state/caddy\n" in unit
    # Debian's unit reads /etc/caddy/Caddyfile; this one must never.
    assert "/etc/caddy" not in unit


@pytest.mark.parametrize("state_dir", ["/srv/my state", "/srv/100%", "/srv/$HOME", '/srv/"q"'])
def test_caddy_unit_refuses_paths_systemd_would_rewrite(state_dir: str) -> None:
    with pytest.raises(Invalid, match="cannot be written into Caddy's systemd unit"):
        _caddy_unit(Path(state_dir))


def test_caddy_unit_refuses_environment_names_that_are_not_identifiers() -> None:
    with pytest.raises(Invalid, match="must be identifiers"):
        render_caddy_unit("/usr/bin/caddy", "/s", "/s/c.json", {"BAD NAME": "/s"})
