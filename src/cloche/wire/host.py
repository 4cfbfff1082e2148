"""The host's own surface: addresses banned for failing to sign in to its sshd."""

from __future__ import annotations

from cloche.wire.base import WireModel


class Ban(WireModel):
    """GET /v1/host/bans, DELETE /v1/host/bans/{address}: an address the firewall drops."""

    address: str
    # ISO-8601 UTC: when the ban runs out, and when it was made.
    until: str
    created: str
    # Failed connections within the window that made it.
    failures: int
