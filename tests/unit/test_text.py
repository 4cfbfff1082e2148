"""output_tail: the end of a program's output, for one-sentence errors."""

from __future__ import annotations

import pytest

from cloche.model.text import output_tail


@pytest.mark.parametrize(
    ("text", "lines", "chars", "expected"),
    [
        ("a\n\n b \nc\n", 2, None, "b | c"),
        ("a\nb\nc", None, None, "a | b | c"),
        ("one\ntwo", None, 5, "| two"),
        ("   \n\n", 3, None, ""),
        ("x" * 10, 1, 4, "xxxx"),
    ],
)
def test_output_tail(text: str, lines: int | None, chars: int | None, expected: str) -> None:
    assert output_tail(text, lines=lines, chars=chars) == expected
