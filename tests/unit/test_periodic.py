"""The daemon's background loops survive a failing pass and keep their rhythm."""

from __future__ import annotations

import threading

from cloche.core.periodic import run_every


def test_a_failing_pass_does_not_end_the_loop() -> None:
    calls: list[int] = []
    third = threading.Event()

    def action() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the first pass breaks")
        if len(calls) == 3:
            third.set()

    thread = run_every("test-loop", 0.01, action)
    assert third.wait(timeout=5), calls
    assert thread.daemon
    assert thread.name == "test-loop"
