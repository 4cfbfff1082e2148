"""Host groups and accounts cloche needs."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from pathlib import Path

from cloche.host.run import run
from cloche.model.principals import HostAccount


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


def ensure_system_user(name: str, home: Path) -> bool:
    """Create a system user (and its own group) that cannot log in; return whether created."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/usr/sbin/nologin",
                name,
            ]
        )
        return True
    return False


def user_ids(name: str) -> tuple[int, int] | None:
    """The uid and primary gid of a user, or None when it does not exist."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def account_of_uid(uid: int) -> HostAccount | None:
    """The host account with this uid and the names of its groups, or None."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return None
    # The account's own groups (primary included), rather than a scan of every group on each call.
    groups = set()
    for gid in os.getgrouplist(entry.pw_name, entry.pw_gid):
        # A group id with no entry of its own still leaves the named ones.
        with contextlib.suppress(KeyError):
            groups.add(grp.getgrgid(gid).gr_name)
    return HostAccount(name=entry.pw_name, uid=uid, groups=frozenset(groups))
