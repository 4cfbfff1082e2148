"""Long operations: run in a worker thread, tracked in the database, answered with an id."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cloche.core.ports import StateStore
from cloche.model.errors import ClocheError, HostFailure
from cloche.model.errors_wire import error_body
from cloche.model.records import OperationRecord

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Work = Callable[[Progress], None]


class OperationRunner:
    """Runs long operations on a small pool of threads and records their progress."""

    def __init__(self, database: StateStore, workers: int = 4) -> None:
        self._database = database
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="operation")
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, kind: str, target: str, work: Work) -> str:
        """Start work in the background; return the operation id clients poll."""
        operation = self._database.operations.create(kind, target, progress="queued")

        def progress(message: str) -> None:
            self._database.operations.update(operation.id, progress=message)

        def run() -> None:
            try:
                work(progress)
            except ClocheError as error:
                self._finish(operation.id, error)
            except Exception as error:
                log.exception("operation %s (%s %s) crashed", operation.id, kind, target)
                self._finish(operation.id, HostFailure(f"{kind} {target} failed: {error}"))
            else:
                self._database.operations.update(operation.id, status="succeeded", progress="done")
            finally:
                with self._lock:
                    self._running.discard(operation.id)

        with self._lock:
            self._running.add(operation.id)
        self._pool.submit(run)
        return operation.id

    def _finish(self, operation_id: str, error: ClocheError) -> None:
        self._database.operations.update(
            operation_id, status="failed", error=json.dumps(error_body(error))
        )

    def get(self, operation_id: str) -> OperationRecord:
        """The operation's record (its error is stored as an API error body, as JSON)."""
        return self._database.operations.get(operation_id)

    def shutdown(self) -> None:
        """Stop taking work and wait for running operations."""
        self._pool.shutdown(wait=True)
