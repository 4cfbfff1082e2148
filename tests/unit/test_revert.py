"""The revert stack: undo in reverse on failure, nothing after success, failing steps logged."""

from __future__ import annotations

import logging

import pytest

from cloche.core.revert import Reverter


def test_undo_steps_run_in_reverse_when_the_block_raises() -> None:
    done: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), Reverter() as revert:
        revert.add("first", lambda: done.append("first"))
        revert.add("second", lambda: done.append("second"))
        raise RuntimeError("boom")
    assert done == ["second", "first"]


def test_success_keeps_the_change() -> None:
    done: list[str] = []
    with Reverter() as revert:
        revert.add("first", lambda: done.append("first"))
        revert.success()
    assert done == []


def test_a_failing_undo_step_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def broken() -> None:
        raise OSError("disk gone")

    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(KeyboardInterrupt),
        Reverter() as revert,
    ):
        revert.add("first", lambda: done.append("first"))
        revert.add("remove the instance", broken)
        raise KeyboardInterrupt
    assert done == ["first"]
    assert "remove the instance failed" in caplog.text
