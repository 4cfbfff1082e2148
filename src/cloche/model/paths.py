"""Where cloche keeps things on the host."""

from __future__ import annotations

CONFIG_PATH = "/etc/cloche/config.yaml"
DAEMON_SOCKET = "/run/cloche/cloche.sock"
DAEMON_SERVICE = "cloche"
# Caddy's admin API controls every route: a unix socket in a directory only root and the caddy
# user may enter (on TCP loopback any local process could load a file server rooted at /).
CADDY_ADMIN_SOCKET = "/run/cloche-caddy/admin.sock"
CADDY_ADMIN_LISTEN = f"unix/{CADDY_ADMIN_SOCKET}"
CADDY_USER = "caddy"
