"""Where cloche keeps things on the host."""

from __future__ import annotations

CONFIG_PATH = "/etc/cloche/config.yaml"
DAEMON_SOCKET = "/run/cloche/cloche.sock"
DAEMON_SERVICE = "cloche"
CADDY_ADMIN_LISTEN = "127.0.0.1:2019"
