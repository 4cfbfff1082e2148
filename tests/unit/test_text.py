"""output_tail: the end of a program's output, for one-sentence errors."""

from __future__ import annotations

import pytest

from cloche.model.errors import Invalid
from cloche.model.text import decode_base64, output_tail


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


def test_decode_base64_returns_the_bytes() -> None:
    assert decode_base64("aGkK", "stdin_base64") == b"hi\n"
    assert decode_base64("", "stdin_base64") == b""


@pytest.mark.parametrize("text", ["abc", "a\x00b", "ünï", "aGk=\n", "!!!!", "-1"])
def test_decode_base64_refuses_what_is_not_base64_naming_the_field(text: str) -> None:
    with pytest.raises(Invalid, match=r"^stdin_base64 is not valid base64; send the bytes"):
        decode_base64(text, "stdin_base64")
