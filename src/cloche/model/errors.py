"""The small exception hierarchy every layer raises and every front end maps in one place."""

from __future__ import annotations


class ClocheError(Exception):
    """Base error: its message is one sentence saying what is wrong and what to do."""

    exit_code = 1
    http_status = 500


class Invalid(ClocheError):
    """The request or the configuration is malformed."""

    exit_code = 2
    http_status = 422


class NotFound(ClocheError):
    """The named thing does not exist."""

    exit_code = 3
    http_status = 404


class Conflict(ClocheError):
    """The request clashes with something that already exists."""

    exit_code = 4
    http_status = 409


class QuotaExceeded(ClocheError):
    """The request would go over a user's quota."""

    exit_code = 5
    http_status = 403


class HostFailure(ClocheError):
    """A host component (LXD, a command, a file) failed."""

    exit_code = 6
    http_status = 502


class Forbidden(ClocheError):
    """The caller is known but may not do this (it is for admins)."""

    exit_code = 7
    http_status = 403


class Unauthenticated(ClocheError):
    """The caller could not be identified: no mapped host account, no valid token."""

    exit_code = 8
    http_status = 401
