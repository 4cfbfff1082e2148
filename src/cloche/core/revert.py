"""A revert stack: undo steps added as a change goes; run in reverse unless it succeeds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Reverter:
    """Collects undo steps for a multi-step change.

    Use as a context manager: on an exception the undo steps run last-added first (a failing
    step is logged and the rest still run) and the exception propagates; call `success()` at
    the end of the block to drop them and keep the change.
    """

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []

    def add(self, description: str, undo: Callable[[], object]) -> None:
        """Register one undo step, described for the log should it fail."""
        self._undo.append((description, undo))

    def success(self) -> None:
        """Keep the change: forget every undo step."""
        self._undo.clear()

    def revert(self) -> None:
        """Run the undo steps, last first, logging (not raising) the ones that fail."""
        while self._undo:
            description, undo = self._undo.pop()
            try:
                undo()
            except Exception:
                log.exception("undoing a failed change: %s failed", description)

    def __enter__(self) -> Reverter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            self.revert()
