"""Host groups and accounts cloche needs."""

from __future__ import annotations

import grp

from cloche.host.run import run

ADMIN_GROUP = "cloche-admin"


def ensure_group(name: str) -> bool:
    """Create a system group if it is missing; return whether it was created."""
    try:
        grp.getgrnam(name)
    except KeyError:
        run(["groupadd", "--system", name])
        return True
    return False


def group_id(name: str) -> int | None:
    """The gid of a group, or None when it does not exist."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None
