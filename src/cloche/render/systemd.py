"""Pure: the systemd units of the cloche daemon and its Caddy, for hosts where systemd runs."""

from __future__ import annotations

from collections.abc import Mapping

from cloche.model.errors import Invalid

UNIT_PATH = "/etc/systemd/system/cloche.service"
# Characters systemd would unquote, escape or expand in a unit's values.
_UNIT_SPECIAL = frozenset("\"'\\%$;")


def render_daemon_unit(python: str) -> str:
    """The cloche.service unit text, running `python -m cloche serve`."""
    return f"""\
# Written by 'cloche host init'.
[Unit]
Description=cloche daemon: isolated environments on this host
Documentation=file:///usr/share/doc/cloche/README.md
After=network-online.target lxd.service lxd.socket
Wants=lxd.service

[Service]
Type=simple
ExecStart={python} -m cloche serve
Restart=on-failure
RestartSec=2
# The daemon is the only writer of cloche's state and drives LXD, sshd, nftables and Caddy.
User=root
RuntimeDirectory=cloche
RuntimeDirectoryMode=0750
StateDirectory=cloche
StateDirectoryMode=0700

[Install]
WantedBy=multi-user.target
"""


def render_caddy_unit(
    caddy: str, caddy_dir: str, config_path: str, environment: Mapping[str, str]
) -> str:
    """The cloche-caddy.service unit text, running `caddy run` on cloche's own config file."""
    if not all(key.isidentifier() for key in environment):
        raise Invalid(f"Caddy's environment names {sorted(environment)} must be identifiers.")
    for value in (caddy, caddy_dir, config_path, *environment.values()):
        if not value or any(char.isspace() or char in _UNIT_SPECIAL for char in value):
            raise Invalid(
                f"{value!r} cannot be written into Caddy's systemd unit; use a state directory "
                "path without spaces, quotes, backslashes, % or $."
            )
    lines = "".join(f"Environment={key}={value}\n" for key, value in sorted(environment.items()))
    return f"""\
# Written by 'cloche host init'.
[Unit]
Description=Caddy for cloche: HTTPS for published environments
Documentation=file:///usr/share/doc/cloche/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart={caddy} run --config {config_path}
# The cloche daemon loads routes through the admin API and keeps the last good config in the file
# above, so a restarted Caddy serves the same routes; its certificates and CA live beside it.
{lines}# Root binds ports 80 and 443; the rest of the system stays read-only to it.
User=root
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
ReadWritePaths={caddy_dir}
Restart=on-failure
RestartSec=2
TimeoutStopSec=5s
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
"""
