"""Pure: the systemd unit of the cloche daemon, for hosts where systemd runs."""

from __future__ import annotations

UNIT_PATH = "/etc/systemd/system/cloche.service"


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
