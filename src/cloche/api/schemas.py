"""What only the api needs besides the wire models: the error responses of each route."""

from __future__ import annotations

from typing import Any

from cloche.wire import ErrorBody

_ERROR_DESCRIPTIONS: dict[int | str, str] = {
    401: "Unauthenticated: the caller could not be identified",
    403: "QuotaExceeded or Forbidden: over the user's quota, or only for admins",
    404: "NotFound: a named user, environment or other thing does not exist",
    409: "Conflict: the request clashes with what exists or with its state",
    422: "Invalid: the request (or a name or value in it) is malformed",
    "5XX": "HostFailure: a host component (LXD, a command, a file) failed",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI error responses of a route: statuses, and 5XX, all with the error body."""
    # Every route may refuse an unidentified caller, or a member where only admins may act.
    keys: tuple[int | str, ...] = (401, *sorted({403, *statuses}), "5XX")
    return {key: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[key]} for key in keys}


ACCEPTED = "Accepted: the operation to poll at GET /v1/operations/{id}"
