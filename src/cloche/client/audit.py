"""The append-only, hash-chained audit log."""

from __future__ import annotations

from cloche.client.connection import path_of
from cloche.client.resource import Resource
from cloche.wire import AuditEvent, AuditVerification


class AuditLog(Resource):
    """/v1/audit: who did what to which thing, when, and whether it worked."""

    def tail(self, limit: int = 50) -> list[AuditEvent]:
        """The last limit events, oldest first."""
        return self._connection.fetch_list(AuditEvent, path_of("audit"), params={"limit": limit})

    def verify(self) -> AuditVerification:
        """Check the hash chain; the verdict names the first line edited, removed or moved."""
        return self._connection.fetch(AuditVerification, "GET", path_of("audit", "verify"))
