"""Pure: the systemd units of the cloche daemon and its Caddy, for hosts where systemd runs."""

from __future__ import annotations

import re

from cloche.model.errors import Invalid
from cloche.model.host import CaddyService

UNIT_PATH = "/etc/systemd/system/cloche.service"
# Characters systemd would unquote, escape or expand in a unit's values.
_UNIT_SPECIAL = frozenset("\"'\\%$;")
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


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


def render_caddy_unit(service: CaddyService) -> str:
    """The cloche-caddy.service unit text: `caddy run` on cloche's config, as its own user."""
    environment = service.environment
    if not all(key.isidentifier() for key in environment):
        raise Invalid(f"Caddy's environment names {sorted(environment)} must be identifiers.")
    if not _NAME.fullmatch(service.user):
        raise Invalid(f"Caddy's user {service.user!r} is not a user name; use one such as caddy.")
    paths = (service.binary, service.directory, service.config_file, service.admin_socket)
    for value in (*paths, *environment.values()):
        if not value or any(char.isspace() or char in _UNIT_SPECIAL for char in value):
            raise Invalid(
                f"{value!r} cannot be written into Caddy's systemd unit; use a state directory "
                "path without spaces, quotes, backslashes, % or $."
            )
    runtime = _runtime_directory(service.admin_socket)
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
ExecStart={service.binary} run --config {service.config_file}
# The cloche daemon loads routes through the admin socket and keeps the last good config in the
# file above, so a restarted Caddy serves the same routes; its certificates and CA live beside it.
{lines}# Its own user, with only the capability to bind ports 80 and 443.
User={service.user}
Group={service.user}
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
# The admin socket's directory: 0700, the caddy user's; root (the daemon) may open it too.
RuntimeDirectory={runtime}
RuntimeDirectoryMode=0700
UMask=0077
PrivateTmp=true
PrivateDevices=true
ProtectHome=true
ProtectSystem=strict
ReadWritePaths={service.directory}
Restart=on-failure
RestartSec=2
TimeoutStopSec=5s
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
"""


def _runtime_directory(admin_socket: str) -> str:
    # systemd makes RuntimeDirectory= under /run, so the socket must sit in /run/NAME/.
    parent, _, name = admin_socket.rpartition("/")
    runtime = parent.removeprefix("/run/")
    if runtime == parent or not _NAME.fullmatch(runtime) or not name:
        raise Invalid(
            f"Caddy's admin socket {admin_socket!r} must be /run/NAME/FILE, so systemd makes its "
            "private directory; use /run/cloche-caddy/admin.sock."
        )
    return runtime
