"""LXD's refusals turned into cloche's errors: by HTTP status first, by LXD's words as a fallback.

LXD answers 404 and 409 only when that is what happened, so those decide. It answers 400 (a bad
request) and 500 (anything else) for many different refusals, quota refusals among them, and a
background operation that fails carries no status of its own; for those, LXD's sentence tells.
"""

from __future__ import annotations

from typing import Any

from cloche.model.errors import ClocheError, Conflict, HostFailure, Invalid, NotFound, QuotaExceeded

NOT_FOUND = 404
CONFLICT = 409
BAD_REQUEST = 400
FORBIDDEN = 403


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


def lxd_status(error: BaseException) -> int | None:
    """The HTTP status of the answer LXD refused with, or None (a failed operation, no answer)."""
    response: Any = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and status >= BAD_REQUEST:
        return status
    # pylxd also raises on a 200 whose body reports an error; LXD's error_code is the real one.
    try:
        code = response.json().get("error_code") if response is not None else None
    except Exception:  # not JSON, or not a dict
        return None
    return code if isinstance(code, int) and code >= BAD_REQUEST else None


def refused(doing: str, error: BaseException) -> HostFailure:
    """LXD's refusal of 'doing' as a HostFailure whatever its kind (for setting up the host)."""
    return HostFailure(f"LXD refused to {doing}: {error}")


def is_busy(error: BaseException) -> bool:
    """True when LXD refused because another operation runs on the instance (retry later)."""
    return "is busy running" in lxd_text(error)


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

# What each status says when no rule knows LXD's words better.
_BY_STATUS: dict[int, tuple[type[ClocheError], str]] = {
    NOT_FOUND: (NotFound, "check the name"),
    CONFLICT: (Conflict, "remove or change what is in the way, then retry"),
    FORBIDDEN: (Invalid, "the user's project does not allow it; ask an admin"),
    BAD_REQUEST: (Invalid, "change the request"),
}


def classify(status: int | None, text: str) -> tuple[type[ClocheError], str, str]:
    """The error class, the advice and the part of LXD's sentence to quote, for a refusal."""
    lowered = text.lower()
    decided = _BY_STATUS.get(status or 0) if status in (NOT_FOUND, CONFLICT) else None
    for words, kind, advice in _RULES:
        if words in lowered and (decided is None or decided[0] is kind):
            # LXD prefixes its reason with what it was doing ("Failed checking if ...: ").
            reason = text[lowered.index(words) :] if kind is QuotaExceeded else text
            return kind, advice, reason
    if decided is None and lowered.endswith("not found"):
        return NotFound, "check the name", text
    kind, advice = _BY_STATUS.get(status or 0, (HostFailure, ""))
    return kind, advice, text


def translate(error: BaseException, doing: str, project: str | None = None) -> ClocheError:
    """The cloche error for an LXD refusal of 'doing' (e.g. "create 'web'")."""
    if isinstance(error, ClocheError):
        return error
    kind, advice, reason = classify(lxd_status(error), lxd_text(error))
    where = f" in project {project}" if project else ""
    if kind is HostFailure:
        return HostFailure(f"LXD refused to {doing}{where}: {reason}.")
    return kind(f"Cannot {doing}{where}: LXD says {reason!r}; {advice}.")
