"""How errors travel over the API: the class name and the sentence, both ways."""

from __future__ import annotations

import json

from cloche.model.errors import (
    ClocheError,
    Conflict,
    Forbidden,
    HostFailure,
    Invalid,
    NotFound,
    QuotaExceeded,
    Unauthenticated,
)

ERROR_CLASSES: dict[str, type[ClocheError]] = {
    cls.__name__: cls
    for cls in (
        Invalid,
        NotFound,
        Conflict,
        QuotaExceeded,
        Forbidden,
        Unauthenticated,
        HostFailure,
    )
}


def error_body(error: ClocheError) -> dict[str, str]:
    """The JSON body the API sends for an error."""
    # A subclass (a RouteError is an Invalid) travels as the public class it specialises.
    kind = next(
        (cls.__name__ for cls in type(error).__mro__ if cls.__name__ in ERROR_CLASSES),
        "HostFailure",
    )
    return {"error": kind, "message": str(error)}


def error_from_body(status: int, body: object) -> ClocheError:
    """Rebuild the error the daemon raised from its status and JSON body."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        cls = ERROR_CLASSES.get(str(body.get("error")), HostFailure)
        return cls(body["message"])
    return HostFailure(f"The cloche daemon answered {status} without an explanation; see its log.")


def stored_error_body(stored: str | None) -> dict[str, str] | None:
    """The error body of a failed operation, from the JSON text its record holds."""
    if not stored:
        return None
    try:
        body = json.loads(stored)
    except ValueError:
        body = None
    # Rows written before errors were stored as API bodies hold the bare sentence.
    if isinstance(body, dict):
        return {str(key): str(value) for key, value in body.items()}
    return error_body(HostFailure(stored))
