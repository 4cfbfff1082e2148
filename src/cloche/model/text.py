"""Pure: short excerpts of command output for one-sentence errors."""

from __future__ import annotations


def output_tail(text: str, lines: int = 3) -> str:
    """The last lines of text that are not blank, stripped and joined by ' | ' ('' if none)."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
