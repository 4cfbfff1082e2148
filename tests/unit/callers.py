"""Who calls the app in unit tests: a header names the principal (the real app reads the socket).

`X-Test-Admin: NAME` makes an admin, `X-Test-Member: USER` a member acting as USER; with
neither the caller is the admin root, as root on the daemon's socket is.
"""

from __future__ import annotations

from fastapi import Request

from cloche.model.principals import Principal

ADMIN_HEADER = "X-Test-Admin"
MEMBER_HEADER = "X-Test-Member"


def header_caller(request: Request) -> Principal:
    """The principal the test's headers name."""
    member = request.headers.get(MEMBER_HEADER)
    if member is not None:
        return Principal(name=member, role="member", user=member, via="test header")
    admin = request.headers.get(ADMIN_HEADER, "root")
    return Principal(name=admin, role="admin", user=None, via="test header")


def member(user: str) -> dict[str, str]:
    """The headers of a request made by the member user."""
    return {MEMBER_HEADER: user}
