"""The daemon's background loops: one shape for all of them, so none can die of one failure."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def run_every(name: str, interval_seconds: float, action: Callable[[], object]) -> threading.Thread:
    """Run action now and then every interval_seconds in a daemon thread, logging any failure."""

    def loop() -> None:
        while True:
            try:
                action()
            except Exception:
                # A pass that fails is retried at the next interval; the daemon keeps serving.
                log.exception(
                    "%s: a pass failed; the next one runs in %.0f s", name, interval_seconds
                )
            threading.Event().wait(interval_seconds)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
