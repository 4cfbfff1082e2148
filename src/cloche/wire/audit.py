"""The audit log: recent events and the verdict on its hash chain."""

from __future__ import annotations

from pydantic import JsonValue

from cloche.model.audit import Outcome
from cloche.wire.base import WireModel


class AuditEvent(WireModel):
    """Who did what to which thing, when (ISO-8601 UTC), and whether it worked."""

    seq: int | None
    time: str
    actor: str
    action: str
    target: str
    outcome: Outcome
    details: dict[str, JsonValue]


class AuditVerification(WireModel):
    """GET /v1/audit/verify: ok, how many lines checked out, and the first bad line if any."""

    ok: bool
    count: int
    first_bad_line: int | None
    reason: str
