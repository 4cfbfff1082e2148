"""Shortening a program's output for an error sentence."""

from __future__ import annotations


def output_tail(text: str, *, lines: int | None = None, chars: int | None = None) -> str:
    """The last non-blank lines of text joined by ' | ' (all when lines is None), at most chars
    characters from the end; '' when there is none."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines is not None:
        kept = kept[-lines:]
    joined = " | ".join(kept)
    return joined if chars is None or len(joined) <= chars else joined[-chars:]
