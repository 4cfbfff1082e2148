"""Long operations: what a 202 answer started, followed until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import PrivateAttr

from cloche.client.connection import Connection, path_of
from cloche.model.errors import HostFailure
from cloche.model.errors_wire import error_from_body
from cloche.wire import Operation

DEFAULT_WAIT = 900.0
Progress = Callable[[str], None]


class OperationHandle(Operation):
    """An operation as the client started it: the wire Operation, and wait() to follow it."""

    _operations: Operations | None = PrivateAttr(default=None)

    def wait(self, timeout: float = DEFAULT_WAIT, on_progress: Progress | None = None) -> Operation:
        """Follow the operation until it ends; return it, or raise the error it failed with."""
        if self._operations is None:
            raise HostFailure(
                f"Operation {self.id} was not started by a client; wait for it with "
                "Client.operations.wait()."
            )
        return self._operations.wait(self.id, timeout=timeout, on_progress=on_progress)


class Operations:
    """GET /v1/operations/{id}: an operation's progress, and waiting until it ends."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, operation_id: str) -> Operation:
        """The operation now: its status, progress and (once failed) its error."""
        return self._connection.fetch(Operation, "GET", path_of("operations", operation_id))

    def wait(
        self,
        operation: str | Operation,
        *,
        timeout: float = DEFAULT_WAIT,
        on_progress: Progress | None = None,
    ) -> Operation:
        """Poll until the operation ends; return it, or raise the error it failed with.

        on_progress receives each progress message; after timeout seconds a HostFailure says
        the operation still runs (it goes on in the daemon).
        """
        operation_id = operation if isinstance(operation, str) else operation.id
        deadline = time.monotonic() + timeout
        # Short operations end in a fraction of a second: poll fast first, then back off.
        pause = 0.05
        while True:
            shown = self.get(operation_id)
            if on_progress is not None and shown.progress:
                on_progress(shown.progress)
            if shown.status == "succeeded":
                return shown
            if shown.status == "failed":
                body = shown.error.model_dump() if shown.error is not None else {}
                raise error_from_body(500, body)
            if time.monotonic() > deadline:
                raise HostFailure(
                    f"Operation {operation_id} is still running after {timeout:.0f} s; "
                    f"follow it with 'cloche operation {operation_id} --wait'."
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)

    def handle(
        self, operation_id: str, *, wait: bool = False, timeout: float = DEFAULT_WAIT
    ) -> OperationHandle:
        """The operation as a handle with wait(); followed to its end first when wait."""
        shown = self.wait(operation_id, timeout=timeout) if wait else self.get(operation_id)
        handle = OperationHandle.model_validate(shown.model_dump())
        handle._operations = self
        return handle
