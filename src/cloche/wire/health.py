"""GET /v1/health."""

from __future__ import annotations

from typing import Literal

from cloche.wire.base import WireModel


class Health(WireModel):
    """The daemon's version and the fingerprints of its code and config."""

    version: str
    status: Literal["ok"]
    # 'host init' restarts a daemon whose code or config changed since it started.
    code: str
    config: str
    # Running environments whose guest reports an address cloche did not assign.
    address_mismatches: list[str]
