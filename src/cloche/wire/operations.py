"""Long operations: the 202 answer with an id, and GET /v1/operations/{id}."""

from __future__ import annotations

from cloche.model.records import OperationStatus
from cloche.wire.base import WireModel
from cloche.wire.errors import ErrorBody


class OperationAccepted(WireModel):
    """A 202 answer: the id of the operation to poll."""

    operation: str


class Operation(WireModel):
    """An operation's progress, and its error once it failed (times are ISO-8601 text)."""

    id: str
    kind: str
    target: str
    status: OperationStatus
    progress: str
    error: ErrorBody | None
    created_at: str
    finished_at: str | None
