"""Text at the edges: output cut short for an error, base64 from a request, one-line values."""

from __future__ import annotations

import base64
import binascii

from cloche.model.errors import Invalid


def decode_base64(text: str, what: str) -> bytes:
    """The bytes a request sent as standard base64; Invalid naming the field otherwise."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # ValueError: text outside ASCII, which base64 never holds.
        raise Invalid(
            f"{what} is not valid base64; send the bytes in standard base64, such as 'aGkK' "
            "for hi and a newline."
        ) from None


def output_tail(text: str, *, lines: int | None = None, chars: int | None = None) -> str:
    """The last non-blank lines of text joined by ' | ' (all when lines is None), at most chars
    characters from the end; '' when there is none."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines is not None:
        kept = kept[-lines:]
    joined = " | ".join(kept)
    return joined if chars is None or len(joined) <= chars else joined[-chars:]


def one_line(value: str, what: str) -> str:
    """value if it is one line of printable text (a space is fine); Invalid naming what otherwise.

    The shared guard of every renderer that writes a value from a user into a generated file:
    a line break, a NUL or another control character there would start a new directive.
    """
    if not value.isprintable():
        raise Invalid(
            f"{what} {value[:60]!r} holds a line break or a control character; give it as one "
            "line of plain text."
        )
    return value
