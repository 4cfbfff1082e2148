"""Static environment addresses on the bridge: the lowest free one, never the gateway."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from cloche.model.errors import QuotaExceeded

# The first addresses after the gateway stay free for the host's own use (and LXD's).
RESERVED_AT_START = 9


def allocate_address(subnet: str, used: Iterable[str]) -> str:
    """The lowest address of subnet not in used, after the gateway and the reserved ones."""
    network = ipaddress.IPv4Network(subnet)
    taken = {ipaddress.IPv4Address(address) for address in used}
    first = network.network_address + 1 + RESERVED_AT_START
    for candidate in network.hosts():
        if candidate >= first and candidate not in taken:
            return str(candidate)
    raise QuotaExceeded(
        f"The bridge's range {subnet} has no free address left; remove environments or give "
        "network.subnet a larger range."
    )


def address_mismatch(environment: str, recorded: str | None, reported: Sequence[str]) -> str | None:
    """A sentence when what a running guest reports is not the address cloche assigned."""
    if not reported or list(reported) == [recorded]:
        return None
    return (
        f"{environment} reports {', '.join(reported)} on eth0 but cloche assigned "
        f"{recorded or 'no address'}; its traffic from other addresses is dropped, and only "
        "the assigned one is used (restart it, or look inside for who changed its network)"
    )
