"""What every resource of the client shares: the connection, and starting long operations."""

from __future__ import annotations

from pydantic import JsonValue

from cloche.client.connection import Body, Connection, Params
from cloche.client.operations import DEFAULT_WAIT, OperationHandle, Operations
from cloche.wire import OperationAccepted


def given(**values: JsonValue) -> dict[str, JsonValue]:
    """The values that were given (not None): the daemon applies its defaults to the rest."""
    return {key: value for key, value in values.items() if value is not None}


class Resource:
    """One group of routes (environments, users, ...) on a shared connection."""

    def __init__(self, connection: Connection, operations: Operations) -> None:
        self._connection = connection
        self._operations = operations

    def _start(
        self,
        method: str,
        path: str,
        *,
        body: Body | None = None,
        params: Params | None = None,
        wait: bool,
        timeout: float = DEFAULT_WAIT,
    ) -> OperationHandle:
        """Send a request the daemon answers with 202 and an operation id; return its handle."""
        accepted = self._connection.fetch(OperationAccepted, method, path, body=body, params=params)
        return self._operations.handle(accepted.operation, wait=wait, timeout=timeout)
