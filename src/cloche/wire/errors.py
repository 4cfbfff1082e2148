"""The error body every failing route answers with (model/errors_wire.py builds it)."""

from __future__ import annotations

from typing import Literal

from cloche.wire.base import WireModel

ErrorKind = Literal["Invalid", "NotFound", "Conflict", "QuotaExceeded", "HostFailure"]


class ErrorBody(WireModel):
    """{error, message}: the public error class and one sentence saying what to do."""

    error: ErrorKind
    message: str
