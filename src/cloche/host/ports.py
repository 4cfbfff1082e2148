"""Whether a host port is free: a proxy device there would fail to listen, or shadow a service."""

from __future__ import annotations

import socket
from typing import Literal


def host_port_in_use(protocol: Literal["tcp", "udp"], port: int) -> bool:
    """True when something on the host already listens on (or holds) port for protocol."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        # Lingering TIME_WAIT connections do not make a port busy for a new listener.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # Every address, as the proxy device will listen; nothing is accepted here.
            probe.bind(("0.0.0.0", port))  # noqa: S104
        except OSError:
            return True
    return False
