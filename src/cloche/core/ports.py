"""The ports: every effect a use case has on the world, as a typed Protocol.

Use cases in core/ reach LXD, the host and the state store only through these. The adapters
live in host/, runtime/ and store/; core/context.py is the one core module that wires them
(unit tests wire fakes instead). The values that cross a port are model/ types.
"""

from __future__ import annotations

from typing import Protocol  # noqa: F401  (each section below adds its Protocols)


# --- state store (store/) -------------------------------------------------------------------


# --- LXD instances and projects (runtime/) --------------------------------------------------


# --- backups: restic, secrets, exports, the catalog ------------------------------------------


# --- images --------------------------------------------------------------------------------


# --- host: firewall, proxy, sshd and jump accounts, packages, kernel, logs, ports, clock ----
