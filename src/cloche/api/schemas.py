"""What only the api needs besides the wire models: the actor header and the error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

from cloche.wire import ErrorBody

# Who asks: the CLI and SDK send the local user's name; every mutating route audits it.
Actor = Annotated[str, Header(alias="X-Cloche-Actor")]

_ERROR_DESCRIPTIONS: dict[int | str, str] = {
    403: "QuotaExceeded: the request would go over the user's quota",
    404: "NotFound: a named user, environment or other thing does not exist",
    409: "Conflict: the request clashes with what exists or with its state",
    422: "Invalid: the request (or a name or value in it) is malformed",
    "5XX": "HostFailure: a host component (LXD, a command, a file) failed",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI error responses of a route: statuses, and 5XX, all with the error body."""
    keys: tuple[int | str, ...] = (*statuses, "5XX")
    return {key: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[key]} for key in keys}


ACCEPTED = "Accepted: the operation to poll at GET /v1/operations/{id}"
