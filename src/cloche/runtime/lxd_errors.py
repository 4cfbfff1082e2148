"""LXD's refusals turned into cloche's errors, and LXD operations waited for with a deadline."""

from __future__ import annotations

import time
from typing import Any

from pylxd import exceptions as lxd_errors

from cloche.model.errors import ClocheError, Conflict, HostFailure, NotFound, QuotaExceeded


class OperationFailed(Exception):
    """An LXD background operation ended in failure; the text is LXD's own."""


class OperationTimeout(Exception):
    """An LXD background operation was still running at the deadline."""


def lxd_text(error: BaseException) -> str:
    """LXD's own words for a refusal, on one line and without a final period."""
    try:
        text = str(error)
    except Exception:  # pylxd's __str__ decodes the response and can itself fail
        text = repr(error)
    return " ".join(text.split()).rstrip(".") or type(error).__name__


# LXD's words (lowercased) that mark a refusal cloche reports as its own error class.
_RULES: tuple[tuple[str, type[ClocheError], str], ...] = (
    (
        "reached maximum",
        QuotaExceeded,
        "delete or shrink an environment, or ask an admin for a larger quota",
    ),
    ("already exists", Conflict, "choose another name"),
    ("is not running", Conflict, "start the environment first"),
    ("only empty projects can be removed", Conflict, "remove what the project holds first"),
    ("currently in use", Conflict, "remove what uses it first"),
    # A quota lowered below what the environments already hold.
    ("is too low", Conflict, "shrink or delete environments first, or keep the higher quota"),
    ("conflict detected", Conflict, "change or delete the environments that need it first"),
    ("non-empty project", Conflict, "delete the project's environments first"),
)


def translate(error: BaseException, doing: str, project: str | None = None) -> ClocheError:
    """The cloche error for an LXD refusal of 'doing' (e.g. "create 'web'")."""
    if isinstance(error, ClocheError):
        return error
    text = lxd_text(error)
    lowered = text.lower()
    where = f" in project {project}" if project else ""
    for words, kind, advice in _RULES:
        if words in lowered:
            # LXD prefixes its reason with what it was doing ("Failed checking if ...: ").
            reason = text[lowered.index(words) :] if kind is QuotaExceeded else text
            return kind(f"Cannot {doing}{where}: LXD says {reason!r}; {advice}.")
    if isinstance(error, lxd_errors.NotFound) or lowered.endswith("not found"):
        return NotFound(f"Cannot {doing}{where}: LXD says {text!r}; check the name.")
    return HostFailure(f"LXD refused to {doing}{where}: {text}.")


def operation_id(response: Any) -> str:
    """The id of the background operation an LXD response started."""
    return str(response.json()["operation"]).rstrip("/").rsplit("/", 1)[-1]


def wait_operation(client: Any, op_id: str, timeout: float) -> dict[str, Any]:
    """Wait for an operation; return its metadata, raise OperationFailed or OperationTimeout."""
    deadline = time.monotonic() + timeout
    while True:
        # LXD's /wait returns when the operation ends or its own timeout passes, so a slow
        # operation never blocks the caller past the deadline.
        remaining = max(1, min(30, round(deadline - time.monotonic())))
        response = client.api.operations[op_id].wait.get(params={"timeout": remaining})
        metadata: dict[str, Any] = response.json().get("metadata") or {}
        status = metadata.get("status")
        if status == "Success":
            return metadata
        if status in ("Failure", "Cancelled"):
            raise OperationFailed(metadata.get("err") or status)
        if time.monotonic() >= deadline:
            raise OperationTimeout(f"operation {op_id} still {status or 'running'}")


def run_operation(client: Any, response: Any, timeout: float) -> dict[str, Any]:
    """Wait for the operation a response started (or return at once for a sync response)."""
    body = response.json()
    if body.get("type") != "async":
        metadata: dict[str, Any] = body.get("metadata") or {}
        return metadata
    return wait_operation(client, operation_id(response), timeout)
